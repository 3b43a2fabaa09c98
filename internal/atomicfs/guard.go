package atomicfs

import (
	"bytes"
	"io/fs"
	"os"
	"strconv"
)

// Guard is an open guard file holding an exclusive kernel lock (flock(2) on
// unix). The kernel drops the lock if the process dies, so a crash inside a
// critical section never wedges the name.
type Guard struct{ f *os.File }

// LockGuard opens (creating if needed) the guard file at path and blocks
// until it holds an exclusive lock on it. Guard files are never removed:
// unlinking one would let two processes lock different inodes of one name.
func LockGuard(path string, perm fs.FileMode) (*Guard, error) {
	g, err := OpenGuard(path, perm)
	if err != nil {
		return nil, err
	}
	if err := g.Lock(); err != nil {
		_ = g.Unlock()
		return nil, err
	}
	return g, nil
}

// OpenGuard opens (creating if needed) the guard file at path without
// locking it, for callers that lock it in the background.
func OpenGuard(path string, perm fs.FileMode) (*Guard, error) {
	f, err := openGuard(path, perm)
	if err != nil {
		if isSymlinkErr(err) {
			return nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
		}
		return nil, err
	}
	return &Guard{f: f}, nil
}

// Lock blocks until this descriptor holds the exclusive lock. It must not
// run while another goroutine calls Unlock.
func (g *Guard) Lock() error {
	if err := lockExclusive(g.f); err != nil {
		return &fs.PathError{Op: "lock", Path: g.f.Name(), Err: err}
	}
	return nil
}

// Counter returns the number stored in the guard file (0 if none). Lokt keeps
// each name's last fencing token there because, unlike the lock file, the
// guard file outlives releases.
func (g *Guard) Counter() uint64 {
	buf := make([]byte, 24)
	n, _ := g.f.ReadAt(buf, 0)
	v, err := strconv.ParseUint(string(bytes.TrimSpace(buf[:n])), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// SetCounter stores v in the guard file. One fixed-width write means a crash
// cannot leave a shorter (smaller) number behind.
func (g *Guard) SetCounter(v uint64) error {
	if _, err := g.f.WriteAt([]byte(padUint(v)+"\n"), 0); err != nil {
		return err
	}
	// Synced: a token handed out must never be handed out again, even after
	// a crash of the host.
	return syncData(g.f)
}

func padUint(v uint64) string {
	s := strconv.FormatUint(v, 10)
	for len(s) < 20 {
		s = "0" + s
	}
	return s
}

// Unlock releases the lock (if held) and closes the file; closing the only
// descriptor drops it.
func (g *Guard) Unlock() error { return g.f.Close() }
