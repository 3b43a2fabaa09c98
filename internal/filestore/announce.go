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
// ROOT/locks/.NAME.T-WAITID.waiting, where T is when it was written (16 hex
// digits of Unix nanoseconds by the writer's clock): the files' arrival
// order, finer than file timestamps, which the kernel keeps to a clock
// tick. (Not ".wait": that is the name's kernel line, .NAME.wait, and names
// may contain dots.)
const waitingExt = ".waiting"

var _ store.Announcer = (*Store)(nil)

// waitingFile is the open locks/ directory and the name of waiter id's
// description of k, written at.
func (s *Store) waitingFile(k store.Key, id string, at time.Time) (*atomicfs.Dir, string, error) {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return nil, "", fmt.Errorf("invalid wait id %q", id)
	}
	dir, err := s.nsDir(store.Locks)
	if err != nil {
		return nil, "", err
	}
	return dir, fmt.Sprintf(".%s.%016x-%s%s", k.Name, uint64(at.UnixNano()), id, waitingExt), nil
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
	dir, name, err := s.waitingFile(k, id, time.Now())
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
// whose files are still held, in arrival order (the time in their names,
// then their ids). It reads the directory once.
func (s *Store) Announced(_ context.Context, k store.Key) ([][]byte, error) {
	dir, entries, err := s.entries(store.Locks)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if name, _, ok := parseDotted(e, waitingExt); ok && name == k.Name {
			files = append(files, e)
		}
	}
	// Same name and fixed-width time: the file names sort by arrival.
	sort.Strings(files)
	var out [][]byte
	for _, e := range files {
		// A file that cannot be read (a planted symlink) describes nobody;
		// lokt never follows it.
		if data, held, err := dir.ReadHeld(e); err == nil && held {
			out = append(out, data)
		}
	}
	return out, nil
}
