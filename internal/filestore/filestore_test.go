package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/atomicfs"
	"github.com/lokt-dev/lokt/store"
)

var _ store.Store = (*Store)(nil)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lockKey(name string) store.Key { return store.Key{NS: store.Locks, Name: name} }

// put stores data under k unconditionally.
func put(t *testing.T, s *Store, k store.Key, data string) {
	t.Helper()
	err := s.Update(context.Background(), k, func([]byte, uint64) (store.Change, error) {
		return store.Change{Op: store.Put, Data: []byte(data)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// peek returns what Update's callback sees for k, changing nothing.
func peek(t *testing.T, s *Store, k store.Key) (cur []byte, seq uint64) {
	t.Helper()
	err := s.Update(context.Background(), k, func(c []byte, sq uint64) (store.Change, error) {
		cur, seq = c, sq
		return store.Change{Op: store.Keep}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cur, seq
}

func TestOpenCreatesLayout(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	s, err := Open("rel/root")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(base, "rel", "root")
	if s.Root() != want || s.Location() != want {
		t.Errorf("Root() = %q, Location() = %q, want absolute %q", s.Root(), s.Location(), want)
	}
	for _, sub := range []string{"locks", "freezes"} {
		if st, err := os.Lstat(filepath.Join(want, sub)); err != nil || !st.IsDir() {
			t.Errorf("%s not created: %v", sub, err)
		}
	}
	if got := s.Path(store.Key{NS: store.Freezes, Name: "x"}); got != filepath.Join(want, "freezes", "x.json") {
		t.Errorf("Path = %q", got)
	}
	// Opening again is fine.
	if _, err := Open(want); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesSymlinks(t *testing.T) {
	elsewhere := t.TempDir()

	t.Run("locks is a symlink", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, filepath.Join(root, "locks")); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(root); err == nil {
			t.Fatal("Open accepted a root whose locks/ is a symlink")
		}
	})
	t.Run("freezes is a file", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		if err := os.MkdirAll(filepath.Join(root, "locks"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "freezes"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(root); err == nil {
			t.Fatal("Open accepted a root whose freezes is a regular file")
		}
	})
	t.Run("root is a symlink", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "root")
		if err := os.Symlink(elsewhere, link); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(link); err == nil {
			t.Fatal("Open accepted a root that is a symlink")
		}
	})
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("Open created %d entries through a symlink", len(entries))
	}
}

func TestUpdatePutReadDelete(t *testing.T) {
	s := openStore(t)
	k := lockKey("a")
	if _, err := s.Read(context.Background(), k); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("Read of a missing record: %v, want ErrNotExist", err)
	}
	if cur, seq := peek(t, s, k); cur != nil || seq != 0 {
		t.Fatalf("missing record: cur=%q seq=%d, want nil, 0", cur, seq)
	}
	put(t, s, k, "one")
	if got, err := s.Read(context.Background(), k); err != nil || string(got) != "one" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if cur, _ := peek(t, s, k); string(cur) != "one" {
		t.Fatalf("callback saw %q, want one", cur)
	}
	put(t, s, k, "two")
	if got, _ := s.Read(context.Background(), k); string(got) != "two" {
		t.Fatalf("after replace: %q", got)
	}
	err := s.Update(context.Background(), k, func([]byte, uint64) (store.Change, error) {
		return store.Change{Op: store.Delete}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(context.Background(), k); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("after delete: %v", err)
	}
	// Deleting what is not there is not an error and creates nothing.
	err = s.Update(context.Background(), k, func(cur []byte, _ uint64) (store.Change, error) {
		if cur != nil {
			t.Errorf("callback saw %q for a deleted record", cur)
		}
		return store.Change{Op: store.Delete}, nil
	})
	if err != nil {
		t.Fatalf("Delete of a missing record: %v", err)
	}
	if _, err := os.Lstat(s.Path(k)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record exists after deleting a missing one: %v", err)
	}
}

func TestUpdateCallbackErrorWritesNothing(t *testing.T) {
	s := openStore(t)
	k := lockKey("a")
	boom := errors.New("boom")
	fail := func(op store.Op) error {
		return s.Update(context.Background(), k, func([]byte, uint64) (store.Change, error) {
			return store.Change{Op: op, Data: []byte("written anyway"), Seq: 100}, boom
		})
	}
	// Absent record stays absent.
	if err := fail(store.Put); !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want the callback's error", err)
	}
	if _, err := s.Read(context.Background(), k); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("record created by a failed update: %v", err)
	}
	// Present record keeps its bytes, sequence is not raised.
	put(t, s, k, "keep me")
	for _, op := range []store.Op{store.Put, store.Delete} {
		if err := fail(op); !errors.Is(err, boom) {
			t.Fatalf("Update returned %v, want the callback's error", err)
		}
	}
	if cur, seq := peek(t, s, k); string(cur) != "keep me" || seq != 0 {
		t.Fatalf("after failed updates: cur=%q seq=%d, want %q, 0", cur, seq, "keep me")
	}
}

func TestUpdateKeepChangesNothing(t *testing.T) {
	s := openStore(t)
	k := lockKey("a")
	put(t, s, k, "v")
	before, err := os.Stat(s.Path(k))
	if err != nil {
		t.Fatal(err)
	}
	peek(t, s, k)
	after, err := os.Stat(s.Path(k))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("Keep replaced the file")
	}
}

func TestUpdateSeq(t *testing.T) {
	s := openStore(t)
	k := lockKey("a")
	step := func(op store.Op, seq uint64) {
		t.Helper()
		err := s.Update(context.Background(), k, func([]byte, uint64) (store.Change, error) {
			return store.Change{Op: op, Data: []byte("d"), Seq: seq}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		op   store.Op
		seq  uint64
		want uint64
	}{
		{store.Put, 5, 5},
		{store.Put, 3, 5}, // smaller: ignored
		{store.Put, 0, 5}, // zero: ignored
		{store.Keep, 9, 9},
		{store.Delete, 12, 12}, // outlives the record
		{store.Delete, 1, 12},
	} {
		step(c.op, c.seq)
		if _, got := peek(t, s, k); got != c.want {
			t.Fatalf("after %v with Seq %d: seq = %d, want %d", c.op, c.seq, got, c.want)
		}
	}
	if _, err := s.Read(context.Background(), k); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("record should be deleted: %v", err)
	}
	// Sequences are per name: a lock and its freeze share one.
	if _, got := peek(t, s, lockKey("b")); got != 0 {
		t.Errorf("seq of another name = %d, want 0", got)
	}
	if _, got := peek(t, s, store.Key{NS: store.Freezes, Name: "a"}); got != 12 {
		t.Errorf("seq of the freeze of the same name = %d, want 12", got)
	}
}

// A lock and its freeze are one critical section: an Update of the freeze
// started while the lock's Update runs sees the lock's change, never the
// state before it.
func TestNameIsOneCriticalSection(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	fk := store.Key{NS: store.Freezes, Name: "x"}
	seen := make(chan string, 1)
	err := s.Update(ctx, lockKey("x"), func([]byte, uint64) (store.Change, error) {
		go func() {
			_ = s.Update(ctx, fk, func([]byte, uint64) (store.Change, error) {
				lock, _ := s.Read(ctx, lockKey("x"))
				seen <- string(lock)
				return store.Change{}, nil
			})
		}()
		return store.Change{Op: store.Put, Data: []byte("held")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "held" {
		t.Errorf("the freeze's update saw the lock as %q, want the committed %q", got, "held")
	}
}

func TestNamespacesAreSeparate(t *testing.T) {
	s := openStore(t)
	put(t, s, lockKey("x"), "lock")
	put(t, s, store.Key{NS: store.Freezes, Name: "x"}, "freeze")
	if got, _ := s.Read(context.Background(), lockKey("x")); string(got) != "lock" {
		t.Errorf("lock x = %q", got)
	}
	if got, _ := s.Read(context.Background(), store.Key{NS: store.Freezes, Name: "x"}); string(got) != "freeze" {
		t.Errorf("freeze x = %q", got)
	}
}

func TestUpdateRefusesSymlinkRecord(t *testing.T) {
	s := openStore(t)
	outside := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(outside, []byte("precious data"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := lockKey("evil")
	if err := os.Symlink(outside, s.Path(k)); err != nil {
		t.Fatal(err)
	}
	for _, op := range []store.Op{store.Put, store.Delete} {
		called := false
		err := s.Update(context.Background(), k, func([]byte, uint64) (store.Change, error) {
			called = true
			return store.Change{Op: op, Data: []byte("overwritten")}, nil
		})
		if !errors.Is(err, store.ErrUnsafe) {
			t.Errorf("Update over a symlink: %v, want ErrUnsafe", err)
		}
		if called {
			t.Error("callback was called for a symlinked record")
		}
	}
	if got, err := os.ReadFile(outside); err != nil || string(got) != "precious data" {
		t.Errorf("symlink target = %q, %v; want it untouched", got, err)
	}
	if st, err := os.Lstat(s.Path(k)); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the symlink itself was replaced or removed: %v", err)
	}
	if _, err := s.Read(context.Background(), k); !errors.Is(err, store.ErrUnsafe) {
		t.Errorf("Read of a symlink: %v, want ErrUnsafe", err)
	}
}

func TestUpdateRefusesDirectoryRecord(t *testing.T) {
	s := openStore(t)
	k := lockKey("d")
	if err := os.Mkdir(s.Path(k), 0o755); err != nil {
		t.Fatal(err)
	}
	err := s.Update(context.Background(), k, func([]byte, uint64) (store.Change, error) {
		t.Error("callback called for a directory")
		return store.Change{}, nil
	})
	if !errors.Is(err, store.ErrUnsafe) {
		t.Fatalf("Update over a directory: %v, want ErrUnsafe", err)
	}
}

func TestUpdateRefusesSymlinkGuard(t *testing.T) {
	s := openStore(t)
	outside := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(outside, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := lockKey("g")
	if err := os.Symlink(outside, filepath.Join(s.Root(), "locks", ".g.lck")); err != nil {
		t.Fatal(err)
	}
	err := s.Update(context.Background(), k, func([]byte, uint64) (store.Change, error) {
		t.Error("callback called with a symlinked guard")
		return store.Change{Op: store.Put, Data: []byte("x"), Seq: 99}, nil
	})
	if !errors.Is(err, store.ErrUnsafe) {
		t.Fatalf("Update with a symlinked guard: %v, want ErrUnsafe", err)
	}
	if got, _ := os.ReadFile(outside); string(got) != "precious" {
		t.Errorf("guard symlink target changed to %q", got)
	}
}

func TestList(t *testing.T) {
	s := openStore(t)
	for _, n := range []string{"zeta", "alpha", "mid.dle"} {
		put(t, s, lockKey(n), "{}")
	}
	put(t, s, store.Key{NS: store.Freezes, Name: "frozen"}, "{}")
	dir := filepath.Join(s.Root(), "locks")
	// Things lokt did not write as records.
	for _, n := range []string{
		atomicfs.TempPrefix + "alpha.json-abcdef", // crash leftover
		".hidden.json", "notes.txt", "README", "x.json.bak", ".json",
	} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.List(context.Background(), store.Locks)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alpha", "mid.dle", "zeta"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List(locks) = %q, want %q", got, want)
	}
	// The guard files written by the updates above exist and are skipped.
	if _, err := os.Lstat(filepath.Join(dir, ".alpha.lck")); err != nil {
		t.Errorf("guard file missing: %v", err)
	}
	if got, err := s.List(context.Background(), store.Freezes); err != nil || !reflect.DeepEqual(got, []string{"frozen"}) {
		t.Errorf("List(freezes) = %q, %v", got, err)
	}
	if _, err := s.List(context.Background(), "nonexistent"); err == nil {
		t.Error("List of a missing namespace succeeded")
	}
}

// Every increment happens under the guard, so none is lost.
func TestUpdateSerialisesConcurrentWriters(t *testing.T) {
	s := openStore(t)
	k := lockKey("counter")
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate Store values, as separate processes would have.
			s2, err := Open(s.Root())
			if err != nil {
				errs <- err
				return
			}
			for i := 0; i < each; i++ {
				err := s2.Update(context.Background(), k, func(cur []byte, seq uint64) (store.Change, error) {
					n := 0
					if cur != nil {
						var err error
						if n, err = strconv.Atoi(string(cur)); err != nil {
							return store.Change{}, fmt.Errorf("read %q: %w", cur, err)
						}
					}
					if uint64(n) != seq {
						return store.Change{}, fmt.Errorf("record %d but seq %d", n, seq)
					}
					return store.Change{Op: store.Put, Data: []byte(strconv.Itoa(n + 1)), Seq: uint64(n + 1)}, nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, _ := s.Read(context.Background(), k); string(got) != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s, want %d: an update was lost", got, workers*each)
	}
}

func waitEvent(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no watch event after %s", what)
	}
}

func watch(t *testing.T, s *Store, keys ...store.Key) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Watch(ctx, keys...)
	if err != nil {
		t.Fatal(err)
	}
	if ch == nil {
		t.Fatal("Watch returned a nil channel")
	}
	return ch
}

func TestWatchSignalsDeleteNotPut(t *testing.T) {
	s := openStore(t)
	k := lockKey("w")

	ch := watch(t, s, k)
	put(t, s, k, "v")
	put(t, s, k, "replaced")
	select {
	case <-ch:
		t.Fatal("woken by a put: a replaced record still blocks")
	case <-time.After(100 * time.Millisecond):
	}
	del(t, s, k)
	waitEvent(t, ch, "a delete")
}

func del(t *testing.T, s *Store, k store.Key) {
	t.Helper()
	err := s.Update(context.Background(), k, func([]byte, uint64) (store.Change, error) {
		return store.Change{Op: store.Delete}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWatchIgnoresOtherNames(t *testing.T) {
	s := openStore(t)
	ch := watch(t, s, lockKey("mine"))
	put(t, s, lockKey("other"), "v")
	put(t, s, store.Key{NS: store.Freezes, Name: "mine"}, "not watched")
	err := s.Update(context.Background(), lockKey("other"), func([]byte, uint64) (store.Change, error) {
		return store.Change{Op: store.Delete}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("woken by a change of another name")
	case <-time.After(150 * time.Millisecond):
	}
	// The watch does work.
	put(t, s, lockKey("mine"), "v")
	del(t, s, lockKey("mine"))
	waitEvent(t, ch, "a delete of the watched name")
}

func TestWatchSeveralKeys(t *testing.T) {
	s := openStore(t)
	fk := store.Key{NS: store.Freezes, Name: "x"}
	put(t, s, fk, "frozen")
	ch := watch(t, s, lockKey("x"), fk)
	del(t, s, fk)
	waitEvent(t, ch, "a delete of the second key")
}

func TestWatchMissingNamespace(t *testing.T) {
	s := openStore(t)
	if ch, err := s.Watch(context.Background(), store.Key{NS: "missing-ns", Name: "x"}); err == nil {
		t.Errorf("Watch of a missing namespace directory succeeded (%v)", ch)
	}
}
