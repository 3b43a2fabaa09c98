package lokt

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/store"
)

func engCount(events []Event, typ EventType) int {
	n := 0
	for _, e := range events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func TestAcquireWaitReturnsWhenReleased(t *testing.T) {
	f := newEngFixture(t)
	held := f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	f.events.Take()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	blocked := make(chan struct{})
	var once sync.Once
	var blockers []error
	o := engAcqOpts("bob", f.holder(2), 0)
	o.Wait = true
	o.OnBlocked = func(err error) {
		blockers = append(blockers, err)
		once.Do(func() { close(blocked) })
	}
	released := make(chan error, 1)
	go func() {
		<-blocked
		_, err := f.root.Release(context.Background(), "x", ReleaseOptions{Identity: Identity{Owner: "alice"}, Holder: f.holder(1)})
		released <- err
	}()
	l, err := f.root.Acquire(ctx, "x", o)
	if err != nil {
		t.Fatalf("waiting Acquire: %v", err)
	}
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	if l.PID != 2 || l.LockID == held.LockID {
		t.Errorf("got %+v", l)
	}
	if len(blockers) == 0 {
		t.Fatal("OnBlocked never called")
	}
	if by := engHeldBy(t, blockers[0]); by.LockID != held.LockID {
		t.Errorf("OnBlocked got %v", blockers[0])
	}
	// One deny for the whole wait, not one per retry.
	ev := f.events.Take()
	if engCount(ev, EventDeny) != 1 || engCount(ev, EventRelease) != 1 || engCount(ev, EventAcquire) != 1 || len(ev) != 3 {
		t.Errorf("events = %v, want one deny, one release, one acquire", engTypes(ev))
	}
}

func TestAcquireWaitFreeLock(t *testing.T) {
	f := newEngFixture(t)
	o := engAcqOpts("bob", f.holder(2), 0)
	o.Wait = true
	o.OnBlocked = func(error) { t.Error("OnBlocked called for a free lock") }
	f.mustAcquire("x", o)
}

func TestAcquireWaitTimeout(t *testing.T) {
	f := newEngFixture(t)
	held := f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	o := engAcqOpts("bob", f.holder(2), 0)
	o.Wait = true
	calls := 0
	o.OnBlocked = func(error) {
		calls++
		f.clock.Advance(time.Second) // the waited time is measured on the Root's clock
	}
	_, err := f.root.Acquire(ctx, "x", o)
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("Acquire = %v, want *TimeoutError", err)
	}
	if by := engHeldBy(t, err); by.LockID != held.LockID {
		t.Errorf("TimeoutError unwraps to a HeldError of %+v", by)
	}
	if errors.Is(err, context.Canceled) {
		t.Error("a deadline reported as a cancellation")
	}
	if calls == 0 || te.Waited != time.Duration(calls)*time.Second {
		t.Errorf("Waited = %v after %d blocked attempts", te.Waited, calls)
	}
	if got := te.Error(); got == "" || !strings.Contains(got, "gave up after waiting") || !strings.Contains(got, "held by") {
		t.Errorf("message %q", got)
	}
	if st, _ := f.root.Get(context.Background(), "x"); st.Lock.LockID != held.LockID {
		t.Error("a timed-out waiter changed the lock")
	}
}

func TestAcquireWaitFrozenTimeout(t *testing.T) {
	f := newEngFixture(t)
	if _, err := f.root.Freeze(context.Background(), "x", FreezeOptions{TTL: time.Hour, Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	o := engAcqOpts("bob", f.holder(2), 0)
	o.Wait = true
	_, err := f.root.Acquire(ctx, "x", o)
	var te *TimeoutError
	var fe *FrozenError
	if !errors.As(err, &te) || !errors.As(err, &fe) {
		t.Fatalf("Acquire = %v, want *TimeoutError wrapping *FrozenError", err)
	}
	if ev := f.events.Take(); engCount(ev, EventFreezeDeny) != 1 {
		t.Errorf("events = %v, want a single freeze-deny", engTypes(ev))
	}
}

func TestAcquireWaitCanceled(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := engAcqOpts("bob", f.holder(2), 0)
	o.Wait = true
	o.OnBlocked = func(error) { cancel() }
	_, err := f.root.Acquire(ctx, "x", o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want context.Canceled", err)
	}
	var te *TimeoutError
	if errors.As(err, &te) {
		t.Error("a cancellation reported as a timeout")
	}
}

// A holder that never releases: the waiter takes the lock once its TTL
// has passed, by breaking it.
func TestAcquireWaitOutlivesExpiry(t *testing.T) {
	f := newEngFixture(t)
	held := f.mustAcquire("x", engAcqOpts("alice", f.holder(1), time.Minute))
	f.events.Take()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := engAcqOpts("bob", f.holder(2), 0)
	o.Wait = true
	var once sync.Once
	o.OnBlocked = func(error) { once.Do(func() { f.clock.Advance(time.Minute) }) }
	l, err := f.root.Acquire(ctx, "x", o)
	if err != nil {
		t.Fatal(err)
	}
	if l.PID != 2 || l.Token <= held.Token {
		t.Errorf("got %+v", l)
	}
	ev := f.events.Take()
	if len(ev) != 3 || ev[0].Type != EventDeny || ev[1].Type != EventStaleBreak || ev[1].Reason != "expired" || ev[2].Type != EventAcquire {
		t.Errorf("events = %+v, want deny, stale-break (expired), acquire", ev)
	}
}

// A freeze lifted while a waiter waits lets it through.
func TestAcquireWaitForUnfreeze(t *testing.T) {
	f := newEngFixture(t)
	if _, err := f.root.Freeze(context.Background(), "x", FreezeOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	blocked := make(chan struct{})
	var once sync.Once
	o := engAcqOpts("bob", f.holder(2), 0)
	o.Wait = true
	o.OnBlocked = func(err error) {
		var fe *FrozenError
		if !errors.As(err, &fe) {
			t.Errorf("blocked by %v, want the freeze", err)
		}
		once.Do(func() { close(blocked) })
	}
	lifted := make(chan error, 1)
	go func() {
		<-blocked
		_, err := f.root.Unfreeze(context.Background(), "x", Actor{})
		lifted <- err
	}()
	if _, err := f.root.Acquire(ctx, "x", o); err != nil {
		t.Fatal(err)
	}
	if err := <-lifted; err != nil {
		t.Fatal(err)
	}
}

// A waiter at the head of the line that never moves (a stopped process)
// must not hold the others back: they retry on their own every
// lineRecheck and take the lock once it is free.
func TestWaitPastStuckHeadOfLine(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	held := f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))

	q, ok := f.root.store.(store.Queue)
	if !ok {
		t.Fatal("the file store is not a store.Queue")
	}
	first, leave, err := q.Line(store.Key{NS: store.Locks, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	<-first // the stuck head

	got := f.waitInLine(ctx, "x", engAcqOpts("bob", f.holder(2), 0))
	if _, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}, LockID: held.LockID}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter behind a stuck head: %v", err)
		}
	case <-time.After(10 * lineRecheck):
		t.Fatal("a waiter behind a stuck head of the line never took the free lock")
	}
}

// The head of the line keeps its place while it works for the lock, so the
// waiters behind it sleep until it has the lock instead of all watching
// the record: a newcomer's turn comes only after the head acquired.
func TestHeadKeepsItsPlaceWhileWaiting(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	held := f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	q := f.root.store.(store.Queue)

	blocked := make(chan struct{}, 16)
	got := make(chan error, 1)
	go func() {
		o := engAcqOpts("bob", f.holder(2), 0)
		o.Wait = true
		o.OnBlocked = func(error) { blocked <- struct{}{} }
		_, err := f.root.Acquire(ctx, "x", o)
		got <- err
	}()
	<-blocked // tried once, before joining the line
	<-blocked // tried again at the head of the line
	first, leave, err := q.Line(store.Key{NS: store.Locks, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	released := make(chan error, 1)
	go func() {
		_, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}, LockID: held.LockID})
		released <- err
	}()
	<-first
	st, err := f.root.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if st.Lock == nil || st.Lock.PID != 2 {
		t.Fatalf("the newcomer's turn came while the head still waited (holder now %+v)", st.Lock)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := <-released; err != nil {
		t.Fatal(err)
	}
}

// A waiter of a plain exclusive lock is listed by Get with who it is and
// for whom, while the record stays version 1, and is gone once it gives up.
func TestWaiterOfExclusiveLockListed(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	ctx, cancel := context.WithCancel(context.Background())
	o := engAcqOpts("bob", f.holder(2), 0)
	o.AgentID = "agent-7"
	o.Wait = true
	done := make(chan error, 1)
	go func() {
		_, err := f.root.Acquire(ctx, "x", o)
		done <- err
	}()
	var st *Status
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if st, err = f.root.Get(context.Background(), "x"); err != nil {
			t.Fatal(err)
		}
		if len(st.Waiters) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond) // the waiter announces itself after its first attempt
	}
	self := Self()
	if len(st.Waiters) != 1 {
		t.Fatalf("waiters = %+v", st.Waiters)
	}
	w := st.Waiters[0]
	if w.Owner != "bob" || w.AgentID != "agent-7" || w.Mode != ModeExclusive || w.Position != 1 ||
		w.PID != self.PID || w.HolderPID != 2 || w.Host != self.Host || w.Since.IsZero() || w.WaitID == "" {
		t.Errorf("waiter = %+v", w)
	}
	if st.Version != 1 || st.Mode != ModeExclusive || st.Lock == nil || st.Lock.PID != 1 {
		t.Errorf("status = %+v", st)
	}
	_ = f.readRecord("x") // still a version 1 record
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled wait: %v", err)
	}
	st, err := f.root.Get(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Waiters) != 0 {
		t.Errorf("waiters after the wait ended: %+v", st.Waiters)
	}
}
