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
