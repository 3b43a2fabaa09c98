package filestore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/store"
)

// Watches share one watcher: ending one must not stop another on the same
// directory, and the directory is unwatched once nobody needs it.
func TestWatchSharedAcrossSubscriptions(t *testing.T) {
	s := openStore(t)
	k := lockKey("shared")
	ctx1, cancel1 := context.WithCancel(context.Background())
	if _, err := s.Watch(ctx1, k); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	ch2, err := s.Watch(ctx2, k)
	if err != nil {
		t.Fatal(err)
	}
	cancel1()
	dir := filepath.Join(s.Root(), string(store.Locks))
	waitWatchers(t, "the first subscription to end", func() bool {
		return watchers.dirs[dir] == 1
	})
	put(t, s, k, "v")
	del(t, s, k)
	waitEvent(t, ch2, "a delete after another watch of the directory ended")
	cancel2()
	waitWatchers(t, "the directory to be unwatched", func() bool {
		_, watched := watchers.dirs[dir]
		return !watched
	})
}

// waitWatchers polls the shared watcher's state: unsubscribing happens in
// the background once a watch's context ends, with nothing to wait on.
func waitWatchers(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		watchers.mu.Lock()
		ok := cond()
		watchers.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// WatchChanges wakes on a record written in place, and a key without a
// name stands for every record of its namespace; Watch still wakes only on
// removal.
func TestWatchChangesReportsWrites(t *testing.T) {
	s := openStore(t)
	var _ store.MultiHolder = s
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := lockKey("w")
	changes, every, removals := watchThree(ctx, t, s, k)
	put(t, s, k, "v1")
	waitEvent(t, changes, "a write of the record")
	waitEvent(t, every, "a write of a record in the namespace")
	put(t, s, lockKey("other"), "v1")
	waitEvent(t, every, "a write of another record")
	select {
	case <-removals:
		t.Fatal("Watch woke for a write")
	default:
	}
	del(t, s, k)
	waitEvent(t, removals, "the removal")
}

// watchThree subscribes to every change of k, to every change of k's
// namespace, and to k's removal.
func watchThree(ctx context.Context, t *testing.T, s *Store, k store.Key) (changes, every, removals <-chan struct{}) {
	t.Helper()
	var err error
	if changes, err = s.WatchChanges(ctx, k); err != nil {
		t.Fatal(err)
	}
	if every, err = s.WatchChanges(ctx, store.Key{NS: k.NS}); err != nil {
		t.Fatal(err)
	}
	if removals, err = s.Watch(ctx, k); err != nil {
		t.Fatal(err)
	}
	return changes, every, removals
}
