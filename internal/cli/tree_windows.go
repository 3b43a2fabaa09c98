package cli

import (
	"os"
	"syscall"
)

// tree on Windows tracks no process group: the command is one process,
// covered by the holder's pid and its own (the co-holder).
type tree struct{}

func newTree() *tree { return &tree{} }

func (t *tree) sysProcAttr() *syscall.SysProcAttr { return nil }

func (t *tree) started(int) {}

func (t *tree) group() int { return 0 }

func (t *tree) deliveredByTerminal(s os.Signal) bool { return deliveredByTerminal(s) }

func (t *tree) signal(p *os.Process, s os.Signal) { _ = p.Signal(s) }

// terminate has no gentler option than Kill on Windows.
func (t *tree) terminate(p *os.Process) { _ = p.Kill() }

func (t *tree) kill(p *os.Process) { _ = p.Kill() }
