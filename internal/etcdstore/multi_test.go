package etcdstore

import (
	"context"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/store"
)

// WatchChanges wakes on a rewrite as well as a removal of a key, and on any
// record of a namespace for a key without a name; a record of another name
// does not wake a watcher of one name. Waiters announcing themselves and
// leaving wake watchers of their lock.
func TestWatchChanges(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	one, err := s.WatchChanges(ctx, lockKey("a"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.WatchChanges(ctx, store.Key{NS: store.Locks})
	if err != nil {
		t.Fatal(err)
	}
	woke := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("no change reported for %s", what)
		}
	}
	update(t, s, lockKey("b"), store.Change{Op: store.Put, Data: []byte("b1")})
	woke(all, "a put of another name, to the namespace watcher")
	update(t, s, lockKey("a"), store.Change{Op: store.Put, Data: []byte("v1")})
	woke(one, "the first put")
	woke(all, "the first put, to the namespace watcher")
	update(t, s, lockKey("a"), store.Change{Op: store.Put, Data: []byte("v2")})
	woke(one, "a rewrite")
	update(t, s, lockKey("a"), store.Change{Op: store.Delete})
	woke(one, "the removal")
	withdraw, err := s.Announce(lockKey("a"), "w1", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	woke(one, "a waiter announcing itself")
	woke(all, "a waiter announcing itself, to the namespace watcher")
	withdraw()
	woke(one, "a waiter withdrawing")
	// Nothing is left over for the one-name watcher from b's put: every
	// value it got was for a.
	select {
	case <-one:
		t.Fatal("a change reported with none pending")
	default:
	}
}

// A version 2 record (no Kept, no TTL) goes on no lease, even where the
// record it replaces was on a holder's lease.
func TestMultiRecordOnNoLease(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	k := lockKey("m")
	kept, err := s.Keep(ctx, k, "h1")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	update(t, s, k, store.Change{Op: store.Put, Data: []byte(`{"version":1}`), Kept: kept})
	lease := func() int64 {
		res, err := s.cli.Get(ctx, s.key(k))
		if err != nil || len(res.Kvs) != 1 {
			t.Fatalf("get: %v %v", res, err)
		}
		return res.Kvs[0].Lease
	}
	if lease() != kept.(*Kept).Lease() {
		t.Fatal("a lone holder's record is not on its lease")
	}
	update(t, s, k, store.Change{Op: store.Put, Data: []byte(`{"version":2}`)})
	if l := lease(); l != 0 {
		t.Fatalf("the version 2 record is on lease %x", l)
	}
}
