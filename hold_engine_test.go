//go:build unix

package lokt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/store"
)

func (f *engFixture) holdFiles() []string {
	f.t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.dir, "locks"))
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".hold") {
			out = append(out, e.Name())
		}
	}
	return out
}

func (f *engFixture) mustHold(name string, o AcquireOptions) *Held {
	f.t.Helper()
	h, err := f.root.Hold(context.Background(), name, HoldOptions{AcquireOptions: o})
	if err != nil {
		f.t.Fatalf("Hold(%q): %v", name, err)
	}
	f.t.Cleanup(h.Abandon)
	return h
}

// inherit duplicates the held evidence descriptor, as a child process that
// inherits it would hold it.
func inherit(t *testing.T, h *Held) *os.File {
	t.Helper()
	fd, err := syscall.Dup(int(h.Files()[0].Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), "inherited")
}

// The evidence keeps a lock live whatever its pids say, and goes with it.
func TestHoldEvidence(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	h := f.mustHold("x", engAcqOpts("alice", f.holder(100), 0))
	if rec := f.readRecord("x"); !rec.Kept || rec.LockID != h.Lock().LockID || rec.PIDNS != "" {
		t.Fatalf("record %+v: want kept, our lock_id", rec)
	}
	if len(h.Files()) != 1 || len(f.holdFiles()) != 1 {
		t.Fatalf("evidence: files %v, on disk %v", h.Files(), f.holdFiles())
	}
	f.live.Set(100, proc.Dead)
	if st, _ := f.root.Get(ctx, "x"); st.State != StateLive {
		t.Fatalf("state with the evidence held but the holder pid dead = %s, want live", st.State)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if f.exists(f.lockPath("x")) || len(f.holdFiles()) != 0 {
		t.Fatalf("after release: record %v, evidence %v", f.exists(f.lockPath("x")), f.holdFiles())
	}
	if err := h.Release(ctx); err != nil {
		t.Fatalf("second release: %v", err)
	}
}

// A process that inherited the evidence keeps the lock after its holder
// is gone; once it is gone too, the next acquirer breaks the lock at once.
func TestHoldEvidenceOutlivesHolder(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	h := f.mustHold("x", engAcqOpts("alice", f.holder(100), 0))
	child := inherit(t, h)
	h.Abandon() // the holder dies without releasing
	f.live.Set(100, proc.Dead)
	_, err := f.root.Acquire(ctx, "x", engAcqOpts("bob", f.holder(200), 0))
	engHeldBy(t, err)
	_ = child.Close() // the last process of the tree exits
	f.events.Take()
	f.mustAcquire("x", engAcqOpts("bob", f.holder(200), 0))
	if got := engTypes(f.events.Take()); len(got) != 2 || got[0] != EventStaleBreak || got[1] != EventAcquire {
		t.Errorf("events %v, want stale-break, acquire", got)
	}
	if left := f.holdFiles(); len(left) != 0 {
		t.Errorf("evidence of the broken lock left behind: %v", left)
	}
}

// The command's process group, noted with the evidence, keeps the lock
// held: Release leaves it in place while the group lives.
func TestHoldTreeKeepsLock(t *testing.T) {
	group := &engLiveness{state: map[int]proc.Liveness{}}
	f := newEngFixture(t, withGroupLiveness(group.Check))
	ctx := context.Background()
	h := f.mustHold("x", engAcqOpts("alice", f.holder(100), 0))
	if err := h.SetTree(ctx, f.holder(555), 555); err != nil {
		t.Fatal(err)
	}
	st, err := f.root.Get(ctx, "x")
	if err != nil || st.Lock.ChildPID != 555 || st.Lock.PGID != 555 {
		t.Fatalf("status does not show the noted tree: %+v, %v", st, err)
	}
	f.live.Set(555, proc.Dead) // the command itself exited
	var still *StillHeldError
	if err := h.Release(ctx); !errors.As(err, &still) || still.PGID != 555 {
		t.Fatalf("release with the group alive: %v, want *StillHeldError for group 555", err)
	}
	f.live.Set(100, proc.Dead)
	if st, _ := f.root.Get(ctx, "x"); st.State != StateLive {
		t.Fatalf("state with only the group alive = %s, want live", st.State)
	}
	group.Set(555, proc.Dead)
	if st, _ := f.root.Get(ctx, "x"); st.State != StateDead {
		t.Fatalf("state with the tree gone = %s, want dead", st.State)
	}
	f.mustAcquire("x", engAcqOpts("bob", f.holder(200), 0))
}

// A broken lock is reported through Done and Err; Release then says so.
func TestHoldLost(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	h := f.mustHold("x", engAcqOpts("alice", f.holder(100), 40*time.Millisecond))
	if _, err := f.open().Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "ops"}, Mode: Force}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the loss was never noticed")
	}
	if err := h.Err(); !errors.Is(err, ErrLost) {
		t.Fatalf("Err = %v, want ErrLost", err)
	}
	if err := h.Release(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("Release after loss = %v, want ErrLost", err)
	}
}

// A renewed lock keeps its lock_id and moves its expiry.
func TestHoldRenews(t *testing.T) {
	f := newEngFixture(t)
	h := f.mustHold("x", engAcqOpts("alice", f.holder(100), 40*time.Millisecond))
	for f.readRecord("x").RenewedAt == nil {
		select {
		case <-h.Done():
			t.Fatalf("lost: %v", h.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if rec := f.readRecord("x"); rec.LockID != h.Lock().LockID {
		t.Fatalf("renewal changed the lock_id: %+v", rec)
	}
}

// A Hold that does not get the lock leaves no evidence behind.
func TestHoldDeniedLeavesNothing(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("x", engAcqOpts("alice", f.holder(100), 0))
	_, err := f.root.Hold(context.Background(), "x", HoldOptions{AcquireOptions: engAcqOpts("bob", f.holder(200), 0)})
	engHeldBy(t, err)
	if left := f.holdFiles(); len(left) != 0 {
		t.Fatalf("a denied Hold left %v", left)
	}
}

// Pids of a holder in another PID namespace are never judged here.
func TestForeignNamespaceHolder(t *testing.T) {
	f := newEngFixture(t)
	other := f.holder(1)
	other.NS = "4026530000"
	f.mustAcquire("x", engAcqOpts("alice", other, 0))
	f.live.Set(1, proc.Dead)
	_, err := f.root.Acquire(context.Background(), "x", engAcqOpts("bob", f.holder(200), 0))
	var held *HeldError
	if !errors.As(err, &held) || held.Foreign != "in another PID namespace" || !strings.Contains(err.Error(), "another PID namespace") {
		t.Fatalf("acquire over a holder in another namespace: %v", err)
	}
	if st, err := f.root.Get(context.Background(), "x"); err != nil || st.State != StateLive || st.Foreign != "in another PID namespace" {
		t.Fatalf("status of a holder in another namespace: %+v, %v", st, err)
	}
}

// leaseStore stands for a store whose evidence is a lease: Keep hands out
// a Kept whose loss the test decides, and once stuck, every Update blocks
// until its context ends, as requests to an unreachable cluster do until
// their timeout.
type leaseStore struct {
	store.Store
	kept    *fakeLease
	stuck   chan struct{} // closed: Update blocks
	entered chan struct{} // gets a value when a blocked Update starts
}

type fakeLease struct{ done chan struct{} }

func (l *fakeLease) Files() []*os.File     { return nil }
func (l *fakeLease) Done() <-chan struct{} { return l.done }
func (l *fakeLease) Close() error          { return nil }

func (s *leaseStore) Keep(context.Context, store.Key, string) (store.Kept, error) {
	return s.kept, nil
}
func (s *leaseStore) Alive(context.Context, store.Key, string) (bool, error) { return true, nil }
func (s *leaseStore) Forget(context.Context, store.Key, string) error        { return nil }

func (s *leaseStore) Update(ctx context.Context, k store.Key, fn func([]byte, uint64) (store.Change, error)) error {
	select {
	case <-s.stuck:
		select {
		case s.entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	default:
	}
	return s.Store.Update(ctx, k, fn)
}

// A lease that ends while a renewal hangs on an unreachable store is
// reported when it ends, not when the renewal gives up.
func TestHoldLeaseLostDuringStuckRenewal(t *testing.T) {
	f := newEngFixture(t)
	ls := &leaseStore{kept: &fakeLease{done: make(chan struct{})}, stuck: make(chan struct{}), entered: make(chan struct{}, 1)}
	ls.Store = f.root.store
	r := f.open(WithStore(ls))
	h, err := r.Hold(context.Background(), "x", HoldOptions{AcquireOptions: engAcqOpts("alice", f.holder(100), 40*time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Abandon()
	close(ls.stuck)
	<-ls.entered // a renewal hangs
	close(ls.kept.done)
	select {
	case <-h.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the lost lease was not reported while a renewal hung")
	}
	if err := h.Err(); !errors.Is(err, ErrLost) {
		t.Fatalf("Err = %v, want ErrLost", err)
	}
}

// Recording the command's tree gives up when the lease ends, rather than
// when a store that stopped answering times out.
func TestSetTreeGivesUpOnLostLease(t *testing.T) {
	f := newEngFixture(t)
	ls := &leaseStore{kept: &fakeLease{done: make(chan struct{})}, stuck: make(chan struct{}), entered: make(chan struct{}, 1)}
	ls.Store = f.root.store
	r := f.open(WithStore(ls))
	h, err := r.Hold(context.Background(), "x", HoldOptions{AcquireOptions: engAcqOpts("alice", f.holder(100), time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Abandon()
	close(ls.stuck)
	got := make(chan error, 1)
	go func() { got <- h.SetTree(context.Background(), f.holder(101), 0) }()
	<-ls.entered
	close(ls.kept.done)
	if err := <-got; !errors.Is(err, ErrLost) {
		t.Fatalf("SetTree = %v, want ErrLost", err)
	}
}
