package lokt

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/store"
)

func slotOpts(owner string, h Holder, n int) AcquireOptions {
	o := engAcqOpts(owner, h, 0)
	o.Slots = n
	return o
}

func sharedOpts(owner string, h Holder) AcquireOptions {
	o := engAcqOpts(owner, h, 0)
	o.Shared = true
	return o
}

func TestSlotsAdmitUpToNAndRefuseOldReaders(t *testing.T) {
	f := newEngFixture(t)
	var tokens []uint64
	for pid := 1; pid <= 3; pid++ {
		l := f.mustAcquire("s", slotOpts("a", f.holder(pid), 3))
		if l.Mode != ModeSlots || l.Slots != 3 {
			t.Fatalf("holder %d: mode %q slots %d", pid, l.Mode, l.Slots)
		}
		tokens = append(tokens, l.Token)
	}
	_, err := f.root.Acquire(context.Background(), "s", slotOpts("a", f.holder(4), 3))
	var held *HeldError
	if !errors.As(err, &held) || !held.Multi || held.Holders != 3 {
		t.Fatalf("fourth holder: %v", err)
	}
	// A lokt that knows only version 1 refuses the record, untouched.
	data, err := os.ReadFile(f.lockPath("s"))
	if err != nil {
		t.Fatal(err)
	}
	var future *lockfile.FutureVersionError
	if _, err := lockfile.DecodeLock(data); !errors.As(err, &future) || future.Version != 2 {
		t.Fatalf("protocol 1 decoder: %v", err)
	}
	if _, err := f.root.Release(context.Background(), "s", ReleaseOptions{Identity: Identity{Owner: "a"}, Holder: f.holder(2)}); err != nil {
		t.Fatal(err)
	}
	l := f.mustAcquire("s", slotOpts("a", f.holder(4), 3))
	tokens = append(tokens, l.Token)
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("tokens not increasing: %v", tokens)
		}
	}
	st, err := f.root.Get(context.Background(), "s")
	if err != nil || len(st.Holders) != 3 || st.State != StateLive {
		t.Fatalf("status: %+v %v", st, err)
	}
	for _, pid := range []int{1, 3, 4} {
		if _, err := f.root.Release(context.Background(), "s", ReleaseOptions{Identity: Identity{Owner: "a"}, Holder: f.holder(pid)}); err != nil {
			t.Fatal(err)
		}
	}
	if f.exists(f.lockPath("s")) {
		t.Fatal("record left after the last slot holder left")
	}
	// The name is plain again: an exclusive lock writes version 1.
	f.mustAcquire("s", engAcqOpts("a", f.holder(5), 0))
	if rec := f.readRecord("s"); rec.Version != 1 || rec.Token <= tokens[len(tokens)-1] {
		t.Fatalf("exclusive record after slots: %+v", rec)
	}
}

func TestDeadSlotHolderFreesItsSlotAtOnce(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("s", slotOpts("a", f.holder(1), 2))
	f.mustAcquire("s", slotOpts("a", f.holder(2), 2))
	f.events.Take()
	f.live.Set(1, proc.Dead)
	f.mustAcquire("s", slotOpts("a", f.holder(3), 2))
	ev := f.events.Take()
	if engCount(ev, EventStaleBreak) != 1 || engCount(ev, EventAcquire) != 1 {
		t.Fatalf("events %v", engTypes(ev))
	}
	for _, e := range ev {
		if e.Lock.Mode != ModeSlots || e.Lock.Slots != 2 {
			t.Fatalf("event %s without slot count: %+v", e.Type, e.Lock)
		}
	}
}

func TestSlotCountsMustAgree(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("s", slotOpts("a", f.holder(1), 3))
	for _, o := range []AcquireOptions{slotOpts("a", f.holder(2), 2), slotOpts("a", f.holder(2), 4)} {
		_, err := f.root.Acquire(context.Background(), "s", o)
		var mm *SlotsMismatchError
		if !errors.As(err, &mm) || mm.Slots != 3 {
			t.Fatalf("slots %d: %v", o.Slots, err)
		}
	}
}

func TestBadSlotOptions(t *testing.T) {
	f := newEngFixture(t)
	for _, o := range []AcquireOptions{
		{Identity: Identity{Owner: "a"}, Holder: f.holder(1), Slots: -1},
		{Identity: Identity{Owner: "a"}, Holder: f.holder(1), Slots: MaxSlots + 1},
		{Identity: Identity{Owner: "a"}, Holder: f.holder(1), Slots: 2, Shared: true},
	} {
		if _, err := f.root.Acquire(context.Background(), "s", o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
	if f.exists(f.lockPath("s")) {
		t.Fatal("bad input wrote a record")
	}
}

// A waiting exclusive holder keeps later shared holders out, and gets in as
// soon as the shared holders before it have left.
func TestExclusiveWaiterIsNotPassedByLaterSharedHolders(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("rw", sharedOpts("r", f.holder(1)))
	f.mustAcquire("rw", sharedOpts("r", f.holder(2)))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := f.waitInLine(ctx, "rw", engAcqOpts("w", f.holder(10), 0))
	st, err := f.root.Get(ctx, "rw")
	if err != nil || len(st.Waiters) != 1 || st.Waiters[0].Mode != ModeExclusive || st.Waiters[0].Position != 1 || st.Waiters[0].Owner != "w" {
		t.Fatalf("line: %+v %v", st, err)
	}
	_, err = f.root.Acquire(ctx, "rw", sharedOpts("r", f.holder(3)))
	var held *HeldError
	if !errors.As(err, &held) || held.Ahead != 1 {
		t.Fatalf("a later shared holder passed the waiting writer: %v", err)
	}
	for _, pid := range []int{1, 2} {
		if _, err := f.root.Release(ctx, "rw", ReleaseOptions{Identity: Identity{Owner: "r"}, Holder: f.holder(pid)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-got; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if rec := f.readRecord("rw"); rec.Version != 1 || rec.PID != 10 {
		t.Fatalf("record after the writer got in: %+v", rec)
	}
}

func TestDeadWaiterLeavesTheLine(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("rw", sharedOpts("r", f.holder(1)))
	ctx, cancel := context.WithCancel(context.Background())
	got := f.waitInLine(ctx, "rw", engAcqOpts("w", f.holder(10), 0))
	cancel()
	if err := <-got; err == nil {
		t.Fatal("cancelled wait acquired")
	}
	st, err := f.root.Get(context.Background(), "rw")
	if err != nil || len(st.Waiters) != 0 {
		t.Fatalf("waiter left its place: %+v %v", st, err)
	}
	f.mustAcquire("rw", sharedOpts("r", f.holder(2)))
}

func TestHoldKeepsASlot(t *testing.T) {
	f := newEngFixture(t)
	o := slotOpts("a", f.holder(1), 2)
	o.TTL = time.Minute
	h, err := f.root.Hold(context.Background(), "s", HoldOptions{AcquireOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	f.mustAcquire("s", slotOpts("a", f.holder(2), 2))
	if err := h.SetTree(context.Background(), f.holder(7), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.beat(context.Background()); err != nil {
		t.Fatalf("renewing a slot: %v", err)
	}
	if err := h.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := f.root.Get(context.Background(), "s")
	if err != nil || len(st.Holders) != 1 || st.Holders[0].PID != 2 {
		t.Fatalf("after release: %+v %v", st, err)
	}
	// Forced: every holder goes, audited one by one.
	f.events.Take()
	if _, err := f.root.Release(context.Background(), "s", ReleaseOptions{Mode: Force}); err != nil {
		t.Fatal(err)
	}
	if f.exists(f.lockPath("s")) || engCount(f.events.Take(), EventForceBreak) != 1 {
		t.Fatal("force left the record")
	}
}

// A store that does not keep version 2 records refuses slots and shared
// holds with a clear error, and writes nothing.
func TestSlotsNeedAMultiHolderStore(t *testing.T) {
	f := newEngFixture(t)
	r := f.open(WithStore(&engFailingStore{Store: f.root.store, err: errors.New("must not write")}))
	for _, o := range []AcquireOptions{slotOpts("a", f.holder(1), 2), sharedOpts("a", f.holder(1))} {
		_, err := r.Acquire(context.Background(), "s", o)
		if err == nil || !strings.Contains(err.Error(), "keeps no multi-holder records") {
			t.Fatalf("%+v: %v", o, err)
		}
	}
}

func TestSlotMessagesAndRefresh(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("s", slotOpts("a", f.holder(1), 1))
	// The same process again refreshes its slot; in another mode it is told.
	if l := f.mustAcquire("s", slotOpts("a", f.holder(1), 1)); l.RenewedAt == nil {
		t.Fatal("not refreshed")
	}
	if _, err := f.root.Acquire(context.Background(), "s", sharedOpts("a", f.holder(1))); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("mode change: %v", err)
	}
	_, err := f.root.Acquire(context.Background(), "s", slotOpts("b", f.holder(2), 2))
	if err == nil || !strings.Contains(err.Error(), "--slots 1") || !strings.Contains(err.Error(), "asked for --slots 2") {
		t.Fatalf("mismatch: %v", err)
	}
	_, err = f.root.Acquire(context.Background(), "s", slotOpts("b", f.holder(2), 1))
	if err == nil || !strings.Contains(err.Error(), "all 1 slots are taken") {
		t.Fatalf("full: %v", err)
	}
	_, err = f.root.Acquire(context.Background(), "s", engAcqOpts("b", f.holder(2), 0))
	if err == nil || !strings.Contains(err.Error(), "is not available") {
		t.Fatalf("exclusive on slots: %v", err)
	}
	f.mustAcquire("r", sharedOpts("a", f.holder(1)))
	_, err = f.root.Acquire(context.Background(), "r", engAcqOpts("b", f.holder(2), 0))
	if err == nil || !strings.Contains(err.Error(), "1 shared holder(s)") {
		t.Fatalf("exclusive on shared: %v", err)
	}
}

func TestReleaseOnSlotNames(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	f.mustAcquire("s", slotOpts("a", f.holder(1), 3))
	f.mustAcquire("s", slotOpts("a", f.holder(2), 3))
	f.mustAcquire("s", slotOpts("b", f.holder(3), 3))
	// Not the caller's entry, and another label: not the owner.
	var notOwner *NotOwnerError
	if _, err := f.root.Release(ctx, "s", ReleaseOptions{Identity: Identity{Owner: "c"}, Holder: f.holder(9)}); !errors.As(err, &notOwner) {
		t.Fatalf("other label: %v", err)
	}
	// Same label, but live holders that are not the caller.
	var live *LiveHolderError
	if _, err := f.root.Release(ctx, "s", ReleaseOptions{Identity: Identity{Owner: "a"}, Holder: f.holder(9)}); !errors.As(err, &live) {
		t.Fatalf("live holder of the same label: %v", err)
	}
	// Nothing stale yet.
	var held *HeldError
	if _, err := f.root.Release(ctx, "s", ReleaseOptions{Mode: BreakStale}); !errors.As(err, &held) {
		t.Fatalf("break-stale of live holders: %v", err)
	}
	// A dead holder under the caller's label is the caller's to release.
	f.live.Set(1, proc.Dead)
	if l, err := f.root.Release(ctx, "s", ReleaseOptions{Identity: Identity{Owner: "a"}, Holder: f.holder(9)}); err != nil || l.PID != 1 {
		t.Fatalf("stale own entry: %v %v", l, err)
	}
	f.live.Set(2, proc.Dead)
	f.events.Take()
	if l, err := f.root.Release(ctx, "s", ReleaseOptions{Mode: BreakStale}); err != nil || l.PID != 2 {
		t.Fatalf("break-stale: %v %v", l, err)
	}
	if ev := f.events.Take(); engCount(ev, EventStaleBreak) != 1 {
		t.Fatalf("events %v", engTypes(ev))
	}
	// A lock_id precondition on a version 2 record concerns that entry only.
	st, err := f.root.Get(ctx, "s")
	if err != nil || len(st.Holders) != 1 {
		t.Fatal(st, err)
	}
	if _, err := f.root.Release(ctx, "s", ReleaseOptions{Mode: BreakStale, LockID: st.Holders[0].LockID}); !errors.As(err, &held) {
		t.Fatalf("break-stale by id of a live holder: %v", err)
	}
	f.mustAcquire("s", slotOpts("b", f.holder(4), 3))
	if _, err := f.root.Release(ctx, "s", ReleaseOptions{Mode: Force, LockID: st.Holders[0].LockID}); err != nil {
		t.Fatal(err)
	}
	if st, err := f.root.Get(ctx, "s"); err != nil || len(st.Holders) != 1 || st.Holders[0].PID != 4 {
		t.Fatalf("after forcing one entry: %+v %v", st, err)
	}
	if _, err := f.root.Release(ctx, "s", ReleaseOptions{Mode: Force, LockID: "gone"}); !errors.Is(err, ErrLost) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestPruneSlotNames(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	f.mustAcquire("s", slotOpts("a", f.holder(1), 2))
	f.mustAcquire("s", slotOpts("a", f.holder(2), 2))
	f.mustAcquire("r", sharedOpts("a", f.holder(3)))
	f.live.Set(1, proc.Dead)
	f.live.Set(3, proc.Dead)
	pruned, err := f.root.Prune(ctx, Actor{})
	if err != nil || strings.Join(pruned, ",") != "r,s" {
		t.Fatalf("pruned %v %v", pruned, err)
	}
	if f.exists(f.lockPath("r")) {
		t.Fatal("shared name with only a dead holder left")
	}
	if st, err := f.root.Get(ctx, "s"); err != nil || len(st.Holders) != 1 || st.Mode != ModeSlots {
		t.Fatalf("%+v %v", st, err)
	}
	if pruned, err := f.root.Prune(ctx, Actor{}); err != nil || len(pruned) != 0 {
		t.Fatalf("second prune %v %v", pruned, err)
	}
}

func TestNewerAndCorruptVersion2Records(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	f.writeRaw(f.lockPath("new"), `{"version":3,"name":"new"}`)
	var newer *UnsupportedVersionError
	if _, err := f.root.Acquire(ctx, "new", sharedOpts("a", f.holder(1))); !errors.As(err, &newer) {
		t.Fatalf("v3: %v", err)
	}
	if st, err := f.root.Get(ctx, "new"); err != nil || st.State != StateUnsupported {
		t.Fatalf("%+v %v", st, err)
	}
	f.writeRaw(f.lockPath("bad"), `{"version":2,"name":"bad","mode":"odd","holders":[]}`)
	if st, err := f.root.Get(ctx, "bad"); err != nil || st.State != StateCorrupt {
		t.Fatalf("%+v %v", st, err)
	}
	f.events.Take()
	f.mustAcquire("bad", sharedOpts("a", f.holder(1)))
	if ev := f.events.Take(); engCount(ev, EventCorruptBreak) != 1 {
		t.Fatalf("events %v", engTypes(ev))
	}
	f.writeRaw(f.lockPath("other"), `{"version":2,"name":"elsewhere","mode":"shared","holders":[]}`)
	if st, _ := f.root.Get(ctx, "other"); st.State != StateCorrupt {
		t.Fatalf("misnamed record: %+v", st)
	}
}

// Changes reports writes as well as removals, for status --watch.
func TestChangesReportsWrites(t *testing.T) {
	f := newEngFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := f.root.Changes(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	f.mustAcquire("c", slotOpts("a", f.holder(1), 2))
	<-ch
	f.mustAcquire("c", slotOpts("a", f.holder(2), 2))
	<-ch
	if _, err := f.root.Changes(ctx, "../x"); err == nil {
		t.Fatal("bad name accepted")
	}
	// A store that cannot watch is looked at on a timer.
	r := f.open(WithStore(&engFailingStore{Store: f.root.store}))
	ch, err = r.Changes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	<-ch
}

func TestStatusOfALineWithoutHolder(t *testing.T) {
	f := newEngFixture(t)
	now := engT0.Format(time.RFC3339Nano)
	later := engT0.Add(time.Hour).Format(time.RFC3339Nano)
	f.writeRaw(f.lockPath("q"), `{"version":2,"name":"q","mode":"exclusive","holders":[],"waiters":[`+
		`{"wait_id":"w1","mode":"exclusive","owner":"o","host":"`+f.root.Host()+`","pid":5,"pid_start":"start-5","since":"`+now+`","expires_at":"`+later+`"},`+
		`{"wait_id":"w2","mode":"shared","owner":"o","host":"elsewhere","pid":6,"pid_start":"x","since":"`+now+`","expires_at":"`+now+`"}]}`)
	st, err := f.root.Get(context.Background(), "q")
	if err != nil || st.State != StateWaiting || st.Lock != nil || len(st.Waiters) != 1 || st.Waiters[0].Position != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	// The head waiter (alive) goes first: a newcomer waits behind it.
	_, err = f.root.Acquire(context.Background(), "q", sharedOpts("n", f.holder(7)))
	if err == nil || !strings.Contains(err.Error(), "first waiting") {
		t.Fatalf("newcomer: %v", err)
	}
	// Once the head waiter is gone, the newcomer gets in at once.
	f.live.Set(5, proc.Dead)
	f.mustAcquire("q", sharedOpts("n", f.holder(7)))
}

// Without a TTL a held slot is reread, and a forced break is noticed.
func TestHoldNoticesABrokenSlot(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	h, err := f.root.Hold(ctx, "s", HoldOptions{AcquireOptions: sharedOpts("a", f.holder(1))})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Abandon()
	f.mustAcquire("s", sharedOpts("a", f.holder(2)))
	if err := h.beat(ctx); err != nil {
		t.Fatalf("still held: %v", err)
	}
	if _, err := f.root.Release(ctx, "s", ReleaseOptions{Mode: Force, LockID: h.Lock().LockID}); err != nil {
		t.Fatal(err)
	}
	if err := h.beat(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("after a forced break: %v", err)
	}
}

// engLeaseStore is the file store dressed as a store with leases: its
// evidence is conclusive, and it records the evidence every write names.
type engLeaseStore struct {
	store.Store
	mu   sync.Mutex
	puts map[string][]store.Kept // record name -> Change.Kept of each Put
}

func (s *engLeaseStore) Update(ctx context.Context, k store.Key, fn func([]byte, uint64) (store.Change, error)) error {
	return s.Store.Update(ctx, k, func(cur []byte, seq uint64) (store.Change, error) {
		c, err := fn(cur, seq)
		if err == nil && c.Op == store.Put {
			s.mu.Lock()
			s.puts[k.Name] = append(s.puts[k.Name], c.Kept)
			s.mu.Unlock()
		}
		return c, err
	})
}

func (s *engLeaseStore) Keep(ctx context.Context, k store.Key, id string) (store.Kept, error) {
	return s.Store.(store.Keeper).Keep(ctx, k, id)
}

func (s *engLeaseStore) Alive(ctx context.Context, k store.Key, id string) (bool, error) {
	return s.Store.(store.Keeper).Alive(ctx, k, id)
}

func (s *engLeaseStore) Forget(ctx context.Context, k store.Key, id string) error {
	return s.Store.(store.Keeper).Forget(ctx, k, id)
}

func (s *engLeaseStore) MultiHolder()   {}
func (s *engLeaseStore) LeasesRecords() {}

func (s *engLeaseStore) lastKept(name string) (store.Kept, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.puts[name]
	if len(p) == 0 {
		return nil, 0
	}
	return p[len(p)-1], len(p)
}

// On a store with leases a version 2 record is never tied to one holder's
// lease (its end would take every holder along), while a lone exclusive
// holder's record is tied to its own; and an entry whose evidence is gone
// is dead there however alive its pids look.
func TestLeaseStoreTiesNoVersion2RecordToOneHolder(t *testing.T) {
	f := newEngFixture(t)
	ls := &engLeaseStore{Store: f.root.store, puts: map[string][]store.Kept{}}
	r := f.open(WithStore(ls))
	ctx := context.Background()
	hold := func(name string, o AcquireOptions) *Held {
		t.Helper()
		h, err := r.Hold(ctx, name, HoldOptions{AcquireOptions: o})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Abandon)
		return h
	}
	h1 := hold("s", sharedOpts("a", f.holder(1)))
	if k, n := ls.lastKept("s"); k != nil || n != 1 {
		t.Fatalf("first shared holder's record: on evidence %v after %d writes", k, n)
	}
	h2 := hold("s", sharedOpts("a", f.holder(2)))
	if k, _ := ls.lastKept("s"); k != nil {
		t.Fatal("second shared holder's record is on one holder's evidence")
	}
	if _, err := r.Renew(ctx, "s", h1.Lock().LockID, RenewOptions{Identity: Identity{Owner: "a"}, Holder: f.holder(1), evidence: h1.kept}); err != nil {
		t.Fatal(err)
	}
	if k, _ := ls.lastKept("s"); k != nil {
		t.Fatal("a renewal put the version 2 record on the renewer's evidence")
	}
	h3 := hold("e", engAcqOpts("a", f.holder(3), 0))
	if k, _ := ls.lastKept("e"); k == nil || k != h3.kept {
		t.Fatalf("a lone exclusive holder's record is on evidence %v, want its own", k)
	}

	// Holder 2's evidence ends while its pid still looks alive: dead on
	// the store with leases, live on plain files.
	h2.Abandon()
	states := func(r *Root) []State {
		st, err := r.Get(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		var out []State
		for _, h := range st.Holders {
			out = append(out, h.State)
		}
		return out
	}
	if got := states(r); len(got) != 2 || got[0] != StateLive || got[1] != StateDead {
		t.Fatalf("states on the store with leases: %v", got)
	}
	if got := states(f.root); len(got) != 2 || got[1] != StateLive {
		t.Fatalf("states on files: %v", got)
	}
	// The dead entry is swept by the next acquirer; holder 1's stays.
	h4 := hold("s", sharedOpts("a", f.holder(4)))
	st, err := r.Get(ctx, "s")
	if err != nil || len(st.Holders) != 2 || st.Holders[0].LockID != h1.Lock().LockID || st.Holders[1].LockID != h4.Lock().LockID {
		t.Fatalf("after the sweep: %+v %v", st, err)
	}
}

// A waiter on another host that keeps evidence leaves the line once that
// evidence ends, on a store where its end is conclusive; elsewhere (or
// without evidence) its expires_at decides.
func TestForeignWaiterWithEndedEvidenceLeavesTheLine(t *testing.T) {
	f := newEngFixture(t)
	ls := &engLeaseStore{Store: f.root.store, puts: map[string][]store.Kept{}}
	r := f.open(WithStore(ls))
	ctx := context.Background()
	kept, err := ls.Keep(ctx, store.Key{NS: store.Locks, Name: "q"}, "live1")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	now := engT0.Format(time.RFC3339Nano)
	later := engT0.Add(time.Hour).Format(time.RFC3339Nano)
	waiter := func(id, lockID string) string {
		return `{"wait_id":"` + id + `","mode":"exclusive","owner":"o","host":"elsewhere","pid":6,"pid_start":"x","since":"` + now + `","expires_at":"` + later + `","lock_id":"` + lockID + `","kept":true}`
	}
	f.writeRaw(f.lockPath("q"), `{"version":2,"name":"q","mode":"exclusive","holders":[],"waiters":[`+
		waiter("gone", "dead1")+`,`+waiter("here", "live1")+`]}`)
	waiting := func(r *Root) []string {
		st, err := r.Get(ctx, "q")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, w := range st.Waiters {
			ids = append(ids, w.WaitID)
		}
		return ids
	}
	if got := waiting(r); len(got) != 1 || got[0] != "here" {
		t.Fatalf("line on the store with leases: %v, want only the waiter whose evidence is held", got)
	}
	if got := waiting(f.root); len(got) != 2 {
		t.Fatalf("line on files: %v, want both until they expire", got)
	}
}
