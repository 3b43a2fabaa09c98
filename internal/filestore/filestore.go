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
	"os"
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

// Store is a lock root on a filesystem.
type Store struct{ root string }

// Open returns the store at root, creating root and its namespace
// directories if needed. None of them may be a symlink.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := atomicfs.EnsureDir(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("lock root: %w", err)
	}
	for _, ns := range []store.Namespace{store.Locks, store.Freezes} {
		if err := atomicfs.EnsureDir(filepath.Join(abs, string(ns)), dirPerm); err != nil {
			return nil, fmt.Errorf("lock root: %w", err)
		}
	}
	return &Store{root: abs}, nil
}

// Root is the absolute path of the lock root.
func (s *Store) Root() string { return s.root }

// Location implements store.Store.
func (s *Store) Location() string { return s.root }

// Path is the file that holds a record.
func (s *Store) Path(k store.Key) string {
	return filepath.Join(s.root, string(k.NS), k.Name+recordExt)
}

// guardPath is the one guard file of a name, whatever the namespace: the
// store contract makes a lock and its freeze one critical section. (It
// also keeps the fencing counter, which must outlive the records.)
func (s *Store) guardPath(k store.Key) string {
	return filepath.Join(s.root, string(store.Locks), "."+k.Name+guardExt)
}

// Update implements store.Store. The guard lock is held only for the read,
// the callback and the write: microseconds, never while anyone waits.
func (s *Store) Update(ctx context.Context, k store.Key, fn func([]byte, uint64) (store.Change, error)) (err error) {
	g, err := atomicfs.LockGuard(s.guardPath(k), filePerm)
	if err != nil {
		return unsafe(err)
	}
	defer func() {
		if uerr := g.Unlock(); err == nil {
			err = uerr
		}
	}()
	cur, err := s.Read(ctx, k)
	if errors.Is(err, fs.ErrNotExist) {
		cur, err = nil, nil
	}
	if err != nil {
		return err
	}
	seq := g.Counter()
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
	dir := filepath.Join(s.root, string(k.NS))
	switch change.Op {
	case store.Put:
		if change.Durable {
			return atomicfs.WriteFile(dir, k.Name+recordExt, change.Data, filePerm)
		}
		return atomicfs.WriteFileVolatile(dir, k.Name+recordExt, change.Data, filePerm)
	case store.Delete:
		if cur == nil {
			return nil
		}
		if change.Durable {
			return atomicfs.Remove(dir, k.Name+recordExt)
		}
		return os.Remove(filepath.Join(dir, k.Name+recordExt))
	}
	return nil
}

// Read implements store.Store.
func (s *Store) Read(_ context.Context, k store.Key) ([]byte, error) {
	data, err := atomicfs.ReadFile(s.Path(k))
	return data, unsafe(err)
}

func unsafe(err error) error {
	if errors.Is(err, atomicfs.ErrNotRegular) {
		return fmt.Errorf("%w: %w", store.ErrUnsafe, err)
	}
	return err
}

// List implements store.Store. Guard files, temporary files and anything
// without the record extension are skipped.
func (s *Store) List(_ context.Context, ns store.Namespace) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, string(ns)))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, recordExt) {
			continue
		}
		names = append(names, strings.TrimSuffix(n, recordExt))
	}
	sort.Strings(names)
	return names, nil
}
