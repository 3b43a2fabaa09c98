package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/lokt-dev/lokt"
)

// nestedError recognises a lock held by this process's own ancestor (the
// guard running this command, or the shell that took it): waiting for it
// would never end. The environment alone is not proof (a sibling may have
// inherited a stale LOKT_LOCK_ID), so it must name the current acquisition;
// otherwise the holder must be an ancestor process. Each acquisition is
// checked once.
func nestedError(f *Factory, root *lokt.Root, blocker error, checked *string) error {
	var held *lokt.HeldError
	// A name with several holders can free up without the ancestor
	// leaving (another slot), so waiting there is not hopeless.
	if !errors.As(blocker, &held) || held.Multi || held.Lock.LockID == *checked {
		return nil
	}
	l := held.Lock
	*checked = l.LockID
	pid := 0
	switch {
	case f.Getenv(envLock) == l.Name && f.Getenv(envLockID) == l.LockID:
		pid = l.PID
	case l.Host == root.Host() && isAncestor(l.PID, l.Start):
		pid = l.PID
	case l.Host == root.Host() && isAncestor(l.ChildPID, l.ChildStart):
		pid = l.ChildPID
	default:
		return nil
	}
	return &exitError{code: ExitHeld, err: fmt.Errorf(
		"lock %q is held by an ancestor of this process (pid %d, %s); waiting for it here would never end\n"+
			"  this command already runs under the lock: run it without lokt lock/guard %s", l.Name, pid, holderText(l), l.Name)}
}

// isAncestor reports whether process pid (started at start) is this
// process's parent, grandparent, and so on.
func isAncestor(pid int, start string) bool {
	if pid <= 1 {
		return false
	}
	p := os.Getppid()
	for range maxAncestry {
		if p <= 1 {
			return false
		}
		if p == pid {
			h, err := lokt.ProcessHolder(p)
			return err == nil && (start == "" || h.Start == start)
		}
		var err error
		if p, err = parentPID(p); err != nil {
			return false
		}
	}
	return false
}
