//go:build unix

package cli

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// tree decides how guard's command and everything it starts are grouped.
//
// Away from a terminal's foreground (cron, CI, agents, background jobs) the
// command leads a process group of its own. Its descendants stay in that
// group unless they leave it on purpose, so the kernel can say whether any
// of them still runs (kill(-pgid, 0)), even after guard is SIGKILLed; and
// guard relays signals to the whole group, as a terminal would.
//
// In a terminal's foreground the command shares guard's group instead, so
// Ctrl-C and Ctrl-Z reach guard and the command together and job control
// works as without lokt. There the tree is tracked only by the descriptor
// it inherits (and the parent-death signal on Linux).
type tree struct {
	shared bool
	pgid   int // the command's own group, once started; 0 when shared
}

func newTree() *tree { return &tree{shared: inTerminalForeground()} }

// inTerminalForeground reports whether this process's group is the
// foreground group of its controlling terminal.
func inTerminalForeground() bool {
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return false // no controlling terminal
	}
	defer func() { _ = unix.Close(fd) }()
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}

func (t *tree) sysProcAttr() *syscall.SysProcAttr {
	attr := childSysProcAttr()
	if !t.shared {
		if attr == nil {
			attr = &syscall.SysProcAttr{}
		}
		attr.Setpgid = true
	}
	return attr
}

// started notes the command's pid, which is its group's id when it has one.
func (t *tree) started(pid int) {
	if !t.shared {
		t.pgid = pid
	}
}

// group is the process group to record for the lock (0: none of its own).
func (t *tree) group() int { return t.pgid }

// deliveredByTerminal: only a command that shares guard's group gets the
// terminal's signals along with guard.
func (t *tree) deliveredByTerminal(s os.Signal) bool {
	return t.shared && deliveredByTerminal(s)
}

// signal passes s on to the command's group, or to the command alone when
// it shares guard's group (the rest of that group is not ours to signal).
func (t *tree) signal(c *child, s os.Signal) {
	n, ok := s.(syscall.Signal)
	if !ok {
		return
	}
	if t.pgid != 0 {
		_ = unix.Kill(-t.pgid, n)
		return
	}
	c.signal(n)
}

// terminate asks the command to stop; guard follows up with kill.
func (t *tree) terminate(c *child) { t.signal(c, syscall.SIGTERM) }

func (t *tree) kill(c *child) { t.signal(c, syscall.SIGKILL) }
