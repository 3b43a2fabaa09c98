package filestore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lokt-dev/lokt/internal/atomicfs"
	"github.com/lokt-dev/lokt/store"
)

// waitingExt ends the name of a waiter's description,
// ROOT/locks/.NAME.WAITID.waiting. (Not ".wait": that is the name's kernel
// line, .NAME.wait, and names may contain dots.)
const waitingExt = ".waiting"

var _ store.Announcer = (*Store)(nil)

// waitingFile is the open locks/ directory and the name of waiter id's
// description of k in it.
func (s *Store) waitingFile(k store.Key, id string) (*atomicfs.Dir, string, error) {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return nil, "", fmt.Errorf("invalid wait id %q", id)
	}
	dir, err := s.nsDir(store.Locks)
	if err != nil {
		return nil, "", err
	}
	return dir, "." + k.Name + "." + id + waitingExt, nil
}

// Announce implements store.Announcer with a file beside the lock's other
// files, holding info and a shared flock(2) for as long as the waiter
// waits, exactly as holder evidence is kept: it is locked under a
// temporary name before it gets its own, so a reader never finds it unheld
// while its waiter lives. withdraw removes it; a waiter that dies leaves an
// unheld file that Announced skips and Sweep removes. The descriptor is
// close-on-exec, so a command the waiter starts once it holds the lock
// does not keep it.
func (s *Store) Announce(k store.Key, id string, info []byte) (func(), error) {
	dir, name, err := s.waitingFile(k, id)
	if err != nil {
		return nil, err
	}
	f, err := dir.CreateHeldWith(name, filePerm, info)
	if err != nil {
		return nil, unsafe(err)
	}
	return sync.OnceFunc(func() {
		// Removed while still held, so nobody can find it unheld and
		// mistake it for a dead waiter's.
		_ = dir.Remove(name, false)
		_ = f.Close()
	}), nil
}

// Announced implements store.Announcer: the descriptions of k's waiters
// whose files are still held, in arrival order, which for files is the
// order the files were written (their modification time, to the
// filesystem's resolution; ties by name). It reads the directory once.
func (s *Store) Announced(_ context.Context, k store.Key) ([][]byte, error) {
	dir, err := s.nsDir(store.Locks)
	if err != nil {
		return nil, err
	}
	entries, err := dir.ReadDirNames()
	if err != nil {
		return nil, err
	}
	type found struct {
		at   time.Time
		file string
		data []byte
	}
	var all []found
	for _, e := range entries {
		name, _, ok := parseDotted(e, waitingExt)
		if !ok || name != k.Name {
			continue
		}
		// A file that cannot be read (a planted symlink) describes nobody;
		// lokt never follows it.
		data, at, held, err := dir.ReadHeld(e)
		if err == nil && held {
			all = append(all, found{at, e, data})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].at.Equal(all[j].at) {
			return all[i].at.Before(all[j].at)
		}
		return all[i].file < all[j].file
	})
	out := make([][]byte, len(all))
	for i, f := range all {
		out[i] = f.data
	}
	return out, nil
}
