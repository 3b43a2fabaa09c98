package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/etcdtest"
	"github.com/lokt-dev/lokt/store"
)

// One member for the package's tests; each test uses its own prefix.
var member *etcdtest.Cluster

func TestMain(m *testing.M) {
	if etcdtest.Binary() == "" {
		fmt.Fprintln(os.Stderr, etcdtest.SkipMessage)
		os.Exit(m.Run()) // every test skips itself
	}
	dir, err := os.MkdirTemp("", "etcdstore-test")
	if err != nil {
		panic(err)
	}
	member, err = etcdtest.New(dir, 1)
	if err != nil {
		panic(err)
	}
	code := m.Run()
	member.Kill()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func open(t *testing.T) *Store {
	t.Helper()
	if member == nil {
		t.Skip(etcdtest.SkipMessage)
	}
	s, err := Open(Config{Endpoints: member.Endpoints(), Prefix: "t/" + t.Name() + "/" + newNonce(), LeaseTTL: 2 * time.Second, RecordGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func lockKey(name string) store.Key   { return store.Key{NS: store.Locks, Name: name} }
func freezeKey(name string) store.Key { return store.Key{NS: store.Freezes, Name: name} }

func update(t *testing.T, s *Store, k store.Key, ch store.Change) {
	t.Helper()
	if err := s.Update(context.Background(), k, func([]byte, uint64) (store.Change, error) { return ch, nil }); err != nil {
		t.Fatal(err)
	}
}

func peek(t *testing.T, s *Store, k store.Key) (cur []byte, seq uint64) {
	t.Helper()
	err := s.Update(context.Background(), k, func(c []byte, sq uint64) (store.Change, error) {
		cur, seq = c, sq
		return store.Change{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cur, seq
}

func TestUpdatePutReadDeleteList(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.Read(ctx, lockKey("a")); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("read of a missing record: %v, want ErrNotExist", err)
	}
	update(t, s, lockKey("b"), store.Change{Op: store.Put, Data: []byte("B")})
	update(t, s, lockKey("a"), store.Change{Op: store.Put, Data: []byte("A")})
	update(t, s, freezeKey("a"), store.Change{Op: store.Put, Data: []byte("F")})
	got, err := s.Read(ctx, lockKey("a"))
	if err != nil || string(got) != "A" {
		t.Fatalf("read = %q, %v", got, err)
	}
	names, err := s.List(ctx, store.Locks)
	if err != nil || strings.Join(names, ",") != "a,b" {
		t.Fatalf("list = %v, %v; want a,b (and no freezes)", names, err)
	}
	update(t, s, lockKey("a"), store.Change{Op: store.Delete})
	if _, err := s.Read(ctx, lockKey("a")); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("after delete: %v", err)
	}
	if got, _ := s.Read(ctx, freezeKey("a")); string(got) != "F" {
		t.Fatalf("the freeze went with the lock: %q", got)
	}
}

func TestCallbackErrorWritesNothing(t *testing.T) {
	s := open(t)
	boom := errors.New("boom")
	err := s.Update(context.Background(), lockKey("a"), func([]byte, uint64) (store.Change, error) {
		return store.Change{Op: store.Put, Data: []byte("x"), Seq: 9}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if cur, seq := peek(t, s, lockKey("a")); cur != nil || seq != 0 {
		t.Fatalf("something was written: %q seq %d", cur, seq)
	}
}

// The sequence only grows and outlives the record: fencing tokens.
func TestSeqOutlivesRecord(t *testing.T) {
	s := open(t)
	update(t, s, lockKey("a"), store.Change{Op: store.Put, Data: []byte("1"), Seq: 5})
	update(t, s, lockKey("a"), store.Change{Op: store.Delete})
	update(t, s, lockKey("a"), store.Change{Op: store.Put, Data: []byte("2"), Seq: 3})
	if _, seq := peek(t, s, lockKey("a")); seq != 5 {
		t.Fatalf("seq = %d, want 5 (never lowered, kept across delete)", seq)
	}
	if _, seq := peek(t, s, freezeKey("a")); seq != 5 {
		t.Fatalf("the freeze of the name sees seq %d, want the name's 5", seq)
	}
}

// Concurrent increments from several clients end exact: Update is a
// compare-and-swap that retries on conflict.
func TestConcurrentUpdatesSerialise(t *testing.T) {
	s := open(t)
	const n, each = 4, 10
	var wg sync.WaitGroup
	for range n {
		c, err := Open(Config{Endpoints: member.Endpoints(), Prefix: s.prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		wg.Go(func() {
			for range each {
				err := c.Update(context.Background(), lockKey("ctr"), func(cur []byte, _ uint64) (store.Change, error) {
					var v int
					if cur != nil {
						_, _ = fmt.Sscan(string(cur), &v)
					}
					return store.Change{Op: store.Put, Data: fmt.Append(nil, v+1)}, nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got, _ := s.Read(context.Background(), lockKey("ctr")); string(got) != fmt.Sprint(n*each) {
		t.Fatalf("counter = %s, want %d", got, n*each)
	}
}

// A lock and its freeze are one critical section: a freeze committed
// between the lock Update's snapshot and its commit makes the commit retry,
// and the retry's read of the freeze sees it.
func TestNameIsOneCriticalSection(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	calls := 0
	var sawFreeze []bool
	err := s.Update(ctx, lockKey("a"), func([]byte, uint64) (store.Change, error) {
		calls++
		_, ferr := s.Read(ctx, freezeKey("a"))
		sawFreeze = append(sawFreeze, ferr == nil)
		if calls == 1 {
			update(t, s, freezeKey("a"), store.Change{Op: store.Put, Data: []byte("F")})
		}
		if ferr == nil {
			return store.Change{}, errors.New("frozen")
		}
		return store.Change{Op: store.Put, Data: []byte("L")}, nil
	})
	if err == nil || err.Error() != "frozen" || fmt.Sprint(sawFreeze) != "[false true]" {
		t.Fatalf("err %v, freeze seen per call %v: the lock slipped past a freeze", err, sawFreeze)
	}
	if _, err := s.Read(ctx, lockKey("a")); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("lock written despite the freeze: %v", err)
	}
}

// A record put with a TTL is on a lease and vanishes by itself; the
// removal is seen by Watch.
func TestTTLRecordVanishesAndIsWatched(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, lockKey("a"))
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, lockKey("a"), store.Change{Op: store.Put, Data: []byte("A"), TTL: time.Second})
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("the record on a 1s lease was not removed within 20s")
	}
	if _, err := s.Read(ctx, lockKey("a")); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("after lease expiry: %v", err)
	}
}

// Keeper: evidence exists while kept, a record attached to it goes when it
// is closed, and Forget is idempotent.
func TestKeeperLease(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	k := lockKey("a")
	kept, err := s.Keep(ctx, k, "id1")
	if err != nil {
		t.Fatal(err)
	}
	if kept.Files() != nil {
		t.Fatal("a lease has no files")
	}
	update(t, s, k, store.Change{Op: store.Put, Data: []byte("A"), Kept: kept, TTL: time.Hour})
	if alive, err := s.Alive(ctx, k, "id1"); !alive || err != nil {
		t.Fatalf("alive = %v, %v while kept", alive, err)
	}
	if alive, err := s.Alive(ctx, k, "other"); alive || err != nil {
		t.Fatalf("unknown id alive = %v, %v", alive, err)
	}
	if err := kept.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-kept.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after Close")
	}
	if alive, err := s.Alive(ctx, k, "id1"); alive || err != nil {
		t.Fatalf("alive = %v, %v after Close", alive, err)
	}
	// The record stays on the (no longer renewed) lease until Forget.
	if _, err := s.Read(ctx, k); err != nil {
		t.Fatalf("record gone at Close: %v", err)
	}
	for range 2 {
		if err := s.Forget(ctx, k, "id1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Read(ctx, k); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("record outlived its holder's forgotten lease: %v", err)
	}
}

// Another process's Forget finds the lease through the evidence key.
func TestForgetFromAnotherClient(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	k := lockKey("a")
	kept, err := s.Keep(ctx, k, "id1")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = kept.Close() }()
	update(t, s, k, store.Change{Op: store.Put, Data: []byte("A"), Kept: kept})
	other, err := Open(Config{Endpoints: member.Endpoints(), Prefix: s.prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close() }()
	if err := other.Forget(ctx, k, "id1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, k); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("record still there after its lease was revoked: %v", err)
	}
	select {
	case <-kept.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the holder did not notice its lease was revoked")
	}
}

// A lease that is no longer renewed (the holder's client is gone) expires:
// Done closes for a holder that lost it.
func TestKeptDoneOnLoss(t *testing.T) {
	s := open(t)
	kept, err := s.Keep(context.Background(), lockKey("a"), "id1")
	if err != nil {
		t.Fatal(err)
	}
	// Revoke it behind the holder's back, as an expiry would end it.
	if _, err := s.cli.Revoke(context.Background(), kept.(*Kept).lease); err != nil {
		t.Fatal(err)
	}
	select {
	case <-kept.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("Done not closed after the lease ended")
	}
}

func TestLineIsFIFO(t *testing.T) {
	s := open(t)
	k := lockKey("a")
	first1, leave1, err := s.Line(k)
	if err != nil {
		t.Fatal(err)
	}
	first2, leave2, err := s.Line(k)
	if err != nil {
		t.Fatal(err)
	}
	first3, leave3, err := s.Line(k)
	if err != nil {
		t.Fatal(err)
	}
	wait := func(ch <-chan struct{}, who string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never got its turn", who)
		}
	}
	wait(first1, "first waiter")
	// The middle waiter leaves early: the third moves up past it once the
	// head leaves.
	leave2()
	select {
	case <-first3:
		t.Fatal("third waiter got its turn while the first is still at the head")
	default:
	}
	leave1()
	wait(first3, "third waiter")
	select {
	case <-first2:
		t.Fatal("a waiter that left got a turn")
	default:
	}
	leave3()
}

// An unreachable cluster is an error wrapping ErrUnavailable that names the
// endpoint, within the configured bound, not a hang.
func TestUnavailable(t *testing.T) {
	if member == nil {
		t.Skip(etcdtest.SkipMessage)
	}
	s, err := Open(Config{Endpoints: []string{"127.0.0.1:1"}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	_, err = s.Read(context.Background(), lockKey("a"))
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("read from nowhere: %v", err)
	}
	err = s.Update(context.Background(), lockKey("a"), func([]byte, uint64) (store.Change, error) {
		t.Error("callback ran without a snapshot")
		return store.Change{}, nil
	})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("update against nowhere: %v", err)
	}
	// The caller's own cancellation is not the cluster's fault.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Read(ctx, lockKey("a")); !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("cancelled read: %v", err)
	}
}

// Retention: the oldest beyond the count go, then everything older than
// the age.
func TestAuditTrailRetention(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	for i := range 5 {
		if err := s.AppendAudit(ctx, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		var got []string
		if _, err := s.ScanAudit(ctx, func(b []byte) error { got = append(got, string(b)); return nil }); err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, ",")
	}
	if got := read(); got != "0,1,2,3,4" {
		t.Fatalf("trail = %s", got)
	}
	if err := s.PruneAudit(ctx, time.Now(), time.Hour, 3); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "2,3,4" {
		t.Fatalf("after keeping 3: %s", got)
	}
	if err := s.PruneAudit(ctx, time.Now().Add(2*time.Hour), time.Hour, 3); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "" {
		t.Fatalf("after the age limit: %s", got)
	}
}
