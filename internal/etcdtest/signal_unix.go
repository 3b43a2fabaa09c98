//go:build unix

package etcdtest

import (
	"os"
	"syscall"
)

var (
	sigStop os.Signal = syscall.SIGSTOP
	sigCont os.Signal = syscall.SIGCONT
)

// resume lets a stopped process run again (a stopped process cannot die).
func resume(p *os.Process) { _ = p.Signal(syscall.SIGCONT) }
