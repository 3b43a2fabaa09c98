//go:build linux || darwin

package proc

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Check reports whether process pid is alive and, when token != "", still
// the same process (its StartToken equals token). pid <= 0 gives Unknown.
func Check(pid int, token string) Liveness {
	if pid <= 0 {
		return Unknown
	}
	got, err := StartToken(pid)
	switch {
	case errors.Is(err, ErrNoProcess):
		return Dead
	case err != nil:
		// Could not look: never declare a holder dead on a guess.
		return Unknown
	case token == "" || got == token:
		return Alive
	default:
		// Same pid, different start: the pid was reused.
		return Dead
	}
}

// Group reports whether process group pgid still has a live member. leader
// is the start token of the process that created the group (pid pgid), if
// known: the kernel never hands out a pid that is still in use as a group
// id, so a process with that pid and another start token proves the group
// is gone. The kernel answers whether the group has members at all; only
// when its leader is gone does Group look closer, since members that have
// exited but are not yet reaped (zombies) still count for the kernel.
func Group(pgid int, leader string) Liveness {
	if pgid <= 1 || pgid > maxPID {
		return Unknown
	}
	switch err := unix.Kill(-pgid, 0); {
	case errors.Is(err, unix.ESRCH):
		return Dead
	case err != nil && !errors.Is(err, unix.EPERM):
		return Unknown
	}
	tok, err := StartToken(pgid)
	switch {
	case err == nil && leader != "" && tok != leader:
		return Dead
	case err == nil:
		return Alive
	}
	return groupWithoutLeader(pgid)
}
