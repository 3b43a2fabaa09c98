//go:build unix

package filestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lokt-dev/lokt/internal/atomicfs"
	"github.com/lokt-dev/lokt/store"
)

// A namespace directory swapped for a symlink after Open: every operation
// fails naming it, and the link's target is neither read nor written.
func TestSwappedNamespaceIsRefused(t *testing.T) {
	s := openStore(t)
	put(t, s, lockKey("x"), "mine")
	decoy := t.TempDir()
	if err := os.WriteFile(filepath.Join(decoy, "x.json"), []byte("decoy"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []store.Namespace{store.Locks, store.Freezes} {
		path := filepath.Join(s.Root(), string(ns))
		if err := os.Rename(path, path+".moved"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(decoy, path); err != nil {
			t.Fatal(err)
		}
		k := store.Key{NS: ns, Name: "x"}
		called := false
		err := s.Update(context.Background(), k, func([]byte, uint64) (store.Change, error) {
			called = true
			return store.Change{Op: store.Put, Data: []byte("new")}, nil
		})
		if !errors.Is(err, store.ErrUnsafe) || !errors.Is(err, atomicfs.ErrSwapped) || !strings.Contains(err.Error(), path) || called {
			t.Errorf("Update in swapped %s = %v (callback run: %v), want ErrSwapped naming it", ns, err, called)
		}
		if _, err := s.Read(context.Background(), k); !errors.Is(err, atomicfs.ErrSwapped) {
			t.Errorf("Read in swapped %s = %v, want ErrSwapped", ns, err)
		}
		if _, err := s.List(context.Background(), ns); !errors.Is(err, atomicfs.ErrSwapped) {
			t.Errorf("List of swapped %s = %v, want ErrSwapped", ns, err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".moved", path); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(decoy, "x.json")); string(got) != "decoy" {
		t.Errorf("decoy changed to %q", got)
	}
	if entries, _ := os.ReadDir(decoy); len(entries) != 1 {
		t.Errorf("files created in the decoy: %v", entries)
	}
	// Restored: the store works again.
	if cur, _ := peek(t, s, lockKey("x")); string(cur) != "mine" {
		t.Errorf("record after restoring = %q", cur)
	}
}

// A garbage counter stops Update before its callback: no token, no write.
func TestUpdateBadCounterChangesNothing(t *testing.T) {
	s := openStore(t)
	guard := filepath.Join(s.Root(), "locks", ".x.lck")
	if err := os.WriteFile(guard, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.Update(context.Background(), lockKey("x"), func([]byte, uint64) (store.Change, error) {
		t.Error("callback run with an unreadable counter")
		return store.Change{Op: store.Put, Data: []byte("x"), Seq: 1}, nil
	})
	if !errors.Is(err, atomicfs.ErrBadCounter) || !strings.Contains(err.Error(), guard) {
		t.Fatalf("Update = %v, want ErrBadCounter naming %s", err, guard)
	}
	if b, _ := os.ReadFile(guard); string(b) != "junk" {
		t.Errorf("guard file changed to %q", b)
	}
	if _, err := os.Lstat(filepath.Join(s.Root(), "locks", "x.json")); err == nil {
		t.Error("a record was written")
	}
}

// The root itself moved away and replaced by a symlink: the store stops
// rather than carry on in the moved directory.
func TestSwappedRootIsRefused(t *testing.T) {
	s := openStore(t)
	put(t, s, lockKey("x"), "mine")
	decoy := t.TempDir()
	if err := os.Rename(s.Root(), s.Root()+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(decoy, s.Root()); err != nil {
		t.Fatal(err)
	}
	err := s.Update(context.Background(), lockKey("x"), func([]byte, uint64) (store.Change, error) {
		t.Error("callback run in a swapped root")
		return store.Change{Op: store.Delete}, nil
	})
	if !errors.Is(err, atomicfs.ErrSwapped) || !strings.Contains(err.Error(), s.Root()) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("Update in a swapped root = %v, want ErrSwapped naming it as a symlink", err)
	}
	if entries, _ := os.ReadDir(decoy); len(entries) != 0 {
		t.Errorf("files created in the decoy: %v", entries)
	}
}
