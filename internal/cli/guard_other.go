//go:build !linux

package cli

import (
	"errors"
	"syscall"
)

// childSysProcAttr: outside Linux there is no parent-death signal; the
// child is recorded as co-holder instead, so the lock stays held while it
// lives even if guard is killed outright.
func childSysProcAttr() *syscall.SysProcAttr { return nil }

// parentPID is not implemented here: nested guards are recognised by
// LOKT_LOCK_ID alone.
func parentPID(int) (int, error) { return 0, errors.ErrUnsupported }
