//go:build unix

package cli

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// relayedSignals are the signals guard catches and passes on to its child.
var relayedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// deliveredByTerminal reports whether the child has already received s from
// the terminal. Ctrl-C sends SIGINT to the whole foreground process group,
// and the child shares guard's group; relaying it too would turn one Ctrl-C
// into two, which many tools take as "stop now, skip the cleanup". A SIGINT
// sent with kill(1) to a guard in a terminal's foreground is therefore not
// relayed: stop such a guard with SIGTERM.
func deliveredByTerminal(s os.Signal) bool {
	if s != syscall.SIGINT {
		return false
	}
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return false // no controlling terminal
	}
	defer func() { _ = unix.Close(fd) }()
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}
