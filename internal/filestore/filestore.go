// Package filestore is the default lokt storage backend: one JSON file per
// record under ROOT/locks and ROOT/freezes. Each update runs under flock(2)
// on a per-name guard file (ROOT/locks/.NAME.lck), and records are replaced
// with write-temp + fsync + rename, so updates of one name are serialised,
// readers never see a partial file, and a crashed writer releases its guard.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lokt-dev/lokt/internal/atomicfs"
	"github.com/lokt-dev/lokt/store"
)

const (
	recordExt = ".json"
	guardExt  = ".lck"
	// The umask decides the final modes, as for any file a user creates:
	// users who share a root (a CI user and a deploy user) give it a shared
	// group, the setgid bit and umask 002; a single user gets 0755/0644.
	dirPerm  = 0o777
	filePerm = 0o666
)

// Store is a lock root on a filesystem. The root and its namespace
// directories are opened once; every later file operation is relative to
// those descriptors and names a single entry, never following a link, so
// a directory swapped for a symlink cannot lead lokt outside the root.
type Store struct {
	root string
	dir  *atomicfs.Dir
	ns   map[store.Namespace]*atomicfs.Dir
}

// Open returns the store at root, creating root and its namespace
// directories if needed. Symlinks above root are resolved once, here; root
// itself and everything in it may not be a symlink.
func Open(root string) (*Store, error) {
	dir, err := atomicfs.OpenDir(root, true, dirPerm)
	if err != nil {
		return nil, fmt.Errorf("lock root: %w", err)
	}
	s := &Store{root: dir.Path(), dir: dir, ns: map[store.Namespace]*atomicfs.Dir{}}
	for _, ns := range []store.Namespace{store.Locks, store.Freezes} {
		d, err := dir.Sub(string(ns), true, dirPerm)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("lock root: %w", err)
		}
		s.ns[ns] = d
	}
	return s, nil
}

// Close closes the root's descriptors. Nothing may use the store after it.
func (s *Store) Close() {
	for _, d := range s.ns {
		_ = d.Close()
	}
	_ = s.dir.Close()
}

// Root is the absolute path of the lock root.
func (s *Store) Root() string { return s.root }

// Location implements store.Store.
func (s *Store) Location() string { return s.root }

// Path is the file that holds a record, for messages.
func (s *Store) Path(k store.Key) string {
	return filepath.Join(s.root, string(k.NS), k.Name+recordExt)
}

// nsDir is the open directory of a namespace, after checking that the root
// is still at its path and still has the namespace under its name: a swap is an error a person must look at,
// not something to work around (the descriptor would still keep lokt in
// the real directory).
func (s *Store) nsDir(ns store.Namespace) (*atomicfs.Dir, error) {
	d, ok := s.ns[ns]
	if !ok {
		return nil, fmt.Errorf("unknown namespace %q", ns)
	}
	if err := s.dir.StillAt(); err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrUnsafe, err)
	}
	if err := s.dir.SameAs(string(ns), d); err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrUnsafe, err)
	}
	return d, nil
}

// guardName is the one guard file of a name, whatever the namespace, in
// locks/: the store contract makes a lock and its freeze one critical
// section. (It also keeps the fencing counter, which must outlive the
// records.)
func guardName(k store.Key) string { return "." + k.Name + guardExt }

// Update implements store.Store. The guard lock is held only for the read,
// the callback and the write: microseconds, never while anyone waits.
func (s *Store) Update(ctx context.Context, k store.Key, fn func([]byte, uint64) (store.Change, error)) (err error) {
	locks, err := s.nsDir(store.Locks)
	if err != nil {
		return err
	}
	g, err := locks.LockGuard(guardName(k), filePerm)
	if err != nil {
		return unsafe(err)
	}
	defer func() {
		if uerr := g.Unlock(); err == nil {
			err = uerr
		}
	}()
	// Checked again under the lock: a waiter may have blocked here while
	// the directory was swapped.
	dir, err := s.nsDir(k.NS)
	if err != nil {
		return err
	}
	cur, err := dir.ReadFile(k.Name + recordExt)
	if errors.Is(err, fs.ErrNotExist) {
		cur, err = nil, nil
	}
	if err != nil {
		return unsafe(err)
	}
	seq, err := g.Counter()
	if err != nil {
		return err
	}
	change, err := fn(cur, seq)
	if err != nil {
		return err
	}
	if change.Seq > seq {
		// Stored first: a token must never be handed out twice, even if the
		// record write below fails.
		if err := g.SetCounter(change.Seq); err != nil {
			return err
		}
	}
	switch change.Op {
	case store.Put:
		return dir.WriteFile(k.Name+recordExt, change.Data, filePerm, change.Durable)
	case store.Delete:
		if cur == nil {
			return nil
		}
		return dir.Remove(k.Name+recordExt, change.Durable)
	}
	return nil
}

// Read implements store.Store.
func (s *Store) Read(_ context.Context, k store.Key) ([]byte, error) {
	dir, err := s.nsDir(k.NS)
	if err != nil {
		return nil, err
	}
	data, err := dir.ReadFile(k.Name + recordExt)
	return data, unsafe(err)
}

// unsafe marks errors about files lokt will not touch. A bad counter is not
// one of them: its message says how to repair the file, which must not be
// removed.
func unsafe(err error) error {
	if errors.Is(err, atomicfs.ErrNotRegular) {
		return fmt.Errorf("%w: %w", store.ErrUnsafe, err)
	}
	return err
}

// entries opens ns's directory and lists the names in it, unsorted.
func (s *Store) entries(ns store.Namespace) (*atomicfs.Dir, []string, error) {
	dir, err := s.nsDir(ns)
	if err != nil {
		return nil, nil, err
	}
	names, err := dir.ReadDirNames()
	if err != nil {
		return nil, nil, err
	}
	return dir, names, nil
}

// List implements store.Store. Guard files, temporary files and anything
// without the record extension are skipped.
func (s *Store) List(_ context.Context, ns store.Namespace) ([]string, error) {
	_, entries, err := s.entries(ns)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range entries {
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, recordExt) {
			continue
		}
		names = append(names, strings.TrimSuffix(n, recordExt))
	}
	sort.Strings(names)
	return names, nil
}
