package lokt

import (
	"context"
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/filestore"
	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/internal/proc"
)

var engLockIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestAcquireFreeLock(t *testing.T) {
	f := newEngFixture(t)
	h := f.holder(101)
	o := AcquireOptions{
		Identity: Identity{Owner: "alice", AgentID: "agent-1"},
		Holder:   h, TTL: 1500 * time.Millisecond,
		Meta: map[string]string{"job": "7"},
	}
	l := f.mustAcquire("build", o)

	if l.Name != "build" || l.Owner != "alice" || l.AgentID != "agent-1" || l.Holder != h {
		t.Errorf("lock = %+v", l)
	}
	if !engLockIDRe.MatchString(l.LockID) {
		t.Errorf("lock_id %q is not 128 random bits in hex", l.LockID)
	}
	if !l.AcquiredAt.Equal(engT0) || l.RenewedAt != nil {
		t.Errorf("acquired_at = %v, renewed_at = %v", l.AcquiredAt, l.RenewedAt)
	}
	if l.ExpiresAt == nil || !l.ExpiresAt.Equal(engT0.Add(1500*time.Millisecond)) {
		t.Errorf("expires_at = %v, want t0+1.5s", l.ExpiresAt)
	}
	if l.TTL != 2*time.Second {
		t.Errorf("TTL = %v, want the TTL rounded up to whole seconds (2s)", l.TTL)
	}
	if l.Token != 1 {
		t.Errorf("first token = %d, want 1", l.Token)
	}

	// What is on disk is the protocol record of the same lock.
	rec := f.readRecord("build")
	want := &lockfile.Lock{
		Version: 1, Name: "build", LockID: l.LockID, Owner: "alice", AgentID: "agent-1",
		Host: h.Host, PID: h.PID, PIDStart: h.Start,
		AcquiredAt: lockfile.NewTime(engT0), ExpiresAt: lockfile.TimePtr(engT0.Add(1500 * time.Millisecond)),
		TTLSec: 2, Token: 1, Meta: map[string]string{"job": "7"},
	}
	if !reflect.DeepEqual(rec, want) {
		t.Errorf("stored record:\n got %+v\nwant %+v", rec, want)
	}

	ev := f.events.Take()
	if len(ev) != 1 || ev[0].Type != EventAcquire || ev[0].Name != "build" || ev[0].Lock.LockID != l.LockID ||
		ev[0].Actor.Owner != "alice" || ev[0].Actor.Holder != h || !ev[0].Time.Equal(engT0) {
		t.Errorf("events = %+v, want one acquire", ev)
	}
}

func TestAcquireNoTTLHasNoExpiry(t *testing.T) {
	f := newEngFixture(t)
	l := f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	if l.ExpiresAt != nil || l.TTL != 0 {
		t.Errorf("lock without TTL: expires %v, TTL %v", l.ExpiresAt, l.TTL)
	}
	if rec := f.readRecord("x"); rec.ExpiresAt != nil || rec.TTLSec != 0 {
		t.Errorf("record: expires %v ttl_sec %d", rec.ExpiresAt, rec.TTLSec)
	}
}

func TestRefreshBySameHolder(t *testing.T) {
	f := newEngFixture(t)
	h := f.holder(101)
	first := f.mustAcquire("x", engAcqOpts("alice", h, time.Minute))
	f.events.Take()

	f.clock.Advance(30 * time.Second)
	o := engAcqOpts("alice", h, 2*time.Minute)
	o.Meta = map[string]string{"k": "v"}
	again := f.mustAcquire("x", o)

	if again.LockID != first.LockID || again.Token != first.Token || !again.AcquiredAt.Equal(first.AcquiredAt) {
		t.Errorf("refresh changed identity: lock_id %s→%s token %d→%d acquired %v→%v",
			first.LockID, again.LockID, first.Token, again.Token, first.AcquiredAt, again.AcquiredAt)
	}
	now := engT0.Add(30 * time.Second)
	if again.ExpiresAt == nil || !again.ExpiresAt.Equal(now.Add(2*time.Minute)) {
		t.Errorf("expires_at = %v, want now+2m", again.ExpiresAt)
	}
	if again.RenewedAt == nil || !again.RenewedAt.Equal(now) {
		t.Errorf("renewed_at = %v, want now", again.RenewedAt)
	}
	rec := f.readRecord("x")
	if rec.LockID != first.LockID || rec.TTLSec != 120 || !rec.RenewedAt.Equal(now) || rec.Meta["k"] != "v" {
		t.Errorf("stored record after refresh: %+v", rec)
	}
	if ev := f.events.Take(); !reflect.DeepEqual(engTypes(ev), []EventType{EventRefresh}) {
		t.Errorf("events = %v, want [refresh]", engTypes(ev))
	}

	// A refresh even after expiry keeps the lock_id: it is still this
	// holder's acquisition, nobody took it in between.
	f.clock.Advance(10 * time.Minute)
	late := f.mustAcquire("x", engAcqOpts("alice", h, time.Minute))
	if late.LockID != first.LockID {
		t.Errorf("refresh after expiry got a new lock_id")
	}
	// Refreshing without a TTL drops the expiry.
	noTTL := f.mustAcquire("x", engAcqOpts("alice", h, 0))
	if noTTL.ExpiresAt != nil || f.readRecord("x").ExpiresAt != nil {
		t.Errorf("refresh without TTL kept an expiry")
	}
}

func TestSameOwnerOtherHolderDenied(t *testing.T) {
	f := newEngFixture(t)
	a, b := f.holder(101), f.holder(202)
	held := f.mustAcquire("x", engAcqOpts("alice", a, time.Hour))
	before, _ := os.ReadFile(f.lockPath("x"))
	f.events.Take()

	f.clock.Advance(time.Minute)
	_, err := f.root.Acquire(context.Background(), "x", engAcqOpts("alice", b, time.Hour))
	if by := engHeldBy(t, err); by.LockID != held.LockID || by.PID != 101 || by.Owner != "alice" {
		t.Errorf("HeldError names %+v, want the first holder", by)
	}
	msg := err.Error()
	for _, want := range []string{`"x"`, "alice@" + a.Host, "pid 101", "since", "1m0s ago", "expires", "in 59m0s"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	// The same pid with another start time is another process too (pid reuse).
	reused := a
	reused.Start = "other-start"
	if _, err := f.root.Acquire(context.Background(), "x", engAcqOpts("alice", reused, time.Hour)); err == nil {
		t.Error("a process reusing the holder's pid was treated as the holder")
	}
	// Same pid and start on another host: another process.
	remote := a
	remote.Host = "elsewhere"
	if _, err := f.root.Acquire(context.Background(), "x", engAcqOpts("alice", remote, time.Hour)); err == nil {
		t.Error("a process on another host was treated as the holder")
	}
	after, _ := os.ReadFile(f.lockPath("x"))
	if string(before) != string(after) {
		t.Error("a denied acquire changed the lock file")
	}
	ev := f.events.Take()
	if len(ev) != 3 || ev[0].Type != EventDeny || ev[0].Lock.LockID != held.LockID || ev[0].Actor.Holder != b {
		t.Errorf("events = %+v, want a deny per attempt naming the holder", ev)
	}
}

func TestNoProcessLocks(t *testing.T) {
	f := newEngFixture(t)
	noProc := Holder{Host: f.root.Host()}
	if _, err := f.root.Acquire(context.Background(), "x", engAcqOpts("alice", noProc, 0)); err == nil || !strings.Contains(err.Error(), "TTL") {
		t.Fatalf("PID 0 without TTL: %v, want an error asking for a TTL", err)
	}
	if f.exists(f.lockPath("x")) {
		t.Fatal("a rejected acquire created the lock")
	}
	l := f.mustAcquire("x", engAcqOpts("alice", noProc, time.Minute))
	if l.PID != 0 {
		t.Fatalf("PID = %d", l.PID)
	}
	// Another PID-0 acquirer, same owner, same host, is another holder.
	_, err := f.root.Acquire(context.Background(), "x", engAcqOpts("alice", noProc, time.Minute))
	engHeldBy(t, err)
	if !strings.Contains(err.Error(), "no process") {
		t.Errorf("message %q does not say the lock has no process", err)
	}
	// Liveness is never asked about pid 0.
	f.live.Set(0, proc.Dead)
	if _, err := f.root.Acquire(context.Background(), "x", engAcqOpts("bob", f.holder(5), 0)); err == nil {
		t.Error("a PID-0 lock was broken by liveness")
	}
	// Its TTL ends it.
	f.clock.Advance(time.Minute)
	f.mustAcquire("x", engAcqOpts("bob", noProc, time.Minute))
}

// A zero Holder means "no process" (the documented meaning of PID 0): the
// record must still be a valid one, or the next acquirer would break it as
// corrupt.
func TestZeroHolderWritesValidRecord(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("x", AcquireOptions{Identity: Identity{Owner: "alice"}, TTL: time.Minute})
	f.readRecord("x")
	_, err := f.root.Acquire(context.Background(), "x", AcquireOptions{Identity: Identity{Owner: "bob"}, TTL: time.Minute})
	engHeldBy(t, err)
}

func TestAcquireValidation(t *testing.T) {
	f := newEngFixture(t)
	for _, c := range []struct {
		name string
		o    AcquireOptions
	}{
		{"", engAcqOpts("a", f.holder(1), 0)},
		{"../escape", engAcqOpts("a", f.holder(1), 0)},
		{".hidden", engAcqOpts("a", f.holder(1), 0)},
		{"ok", engAcqOpts("a", f.holder(1), -time.Second)},
		{"ok", engAcqOpts("a", Holder{Host: "h", PID: -4}, time.Minute)},
	} {
		if _, err := f.root.Acquire(context.Background(), c.name, c.o); err == nil {
			t.Errorf("Acquire(%q, %+v) succeeded", c.name, c.o)
		}
	}
	if _, err := f.root.Acquire(context.Background(), "a/b", engAcqOpts("a", f.holder(1), 0)); !errors.Is(err, lockfile.ErrInvalidName) {
		t.Errorf("invalid name error %v does not wrap ErrInvalidName", err)
	}
	if entries, _ := os.ReadDir(f.dir + "/locks"); len(entries) != 0 {
		t.Errorf("rejected acquisitions left %d files", len(entries))
	}
	if ev := f.events.Take(); len(ev) != 0 {
		t.Errorf("rejected acquisitions emitted %v", engTypes(ev))
	}
}

func TestExpiredLockIsBroken(t *testing.T) {
	f := newEngFixture(t)
	old := f.mustAcquire("x", engAcqOpts("alice", f.holder(101), time.Minute))
	f.events.Take()

	f.clock.Advance(time.Minute - time.Nanosecond)
	_, err := f.root.Acquire(context.Background(), "x", engAcqOpts("bob", f.holder(202), time.Minute))
	engHeldBy(t, err)

	f.clock.Advance(time.Nanosecond) // exactly at expires_at: expired
	f.events.Take()
	l := f.mustAcquire("x", engAcqOpts("bob", f.holder(202), time.Minute))
	if l.LockID == old.LockID || l.PID != 202 || l.Owner != "bob" {
		t.Errorf("new lock %+v", l)
	}
	if l.Token <= old.Token {
		t.Errorf("token %d after break, was %d", l.Token, old.Token)
	}
	ev := f.events.Take()
	if !reflect.DeepEqual(engTypes(ev), []EventType{EventStaleBreak, EventAcquire}) {
		t.Fatalf("events = %v, want [stale-break acquire]", engTypes(ev))
	}
	if ev[0].Reason != "expired" || ev[0].Lock.LockID != old.LockID || ev[0].Actor.PID != 202 {
		t.Errorf("stale-break event %+v", ev[0])
	}
}

func TestDeadHolderIsBroken(t *testing.T) {
	f := newEngFixture(t)
	old := f.mustAcquire("x", engAcqOpts("alice", f.holder(101), 0))
	f.live.Set(101, proc.Dead)
	f.events.Take()
	l := f.mustAcquire("x", engAcqOpts("bob", f.holder(202), 0))
	ev := f.events.Take()
	if !reflect.DeepEqual(engTypes(ev), []EventType{EventStaleBreak, EventAcquire}) || ev[0].Reason != "dead" {
		t.Fatalf("events = %+v, want stale-break (dead) then acquire", ev)
	}
	if ev[0].Lock.LockID != old.LockID || l.PID != 202 {
		t.Errorf("broke %s, took %+v", ev[0].Lock.LockID, l)
	}
}

func TestUnknownLivenessIsNotBroken(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("x", engAcqOpts("alice", f.holder(101), 0))
	f.live.Set(101, proc.Unknown)
	_, err := f.root.Acquire(context.Background(), "x", engAcqOpts("bob", f.holder(202), 0))
	engHeldBy(t, err)
	if _, err := f.root.Release(context.Background(), "x", ReleaseOptions{Identity: Identity{Owner: "bob"}, Mode: BreakStale}); err == nil {
		t.Error("BreakStale removed a lock whose holder could not be checked")
	}
	st, err := f.root.Get(context.Background(), "x")
	if err != nil || st.State != StateLive {
		t.Errorf("Get = %+v, %v; want live", st, err)
	}
}

func TestOtherHostJudgedByTTLOnly(t *testing.T) {
	f := newEngFixture(t)
	remote := Holder{Host: "other-host", PID: 101, Start: "s"}
	f.mustAcquire("x", engAcqOpts("alice", remote, time.Minute))
	f.live.Set(101, proc.Dead) // pid 101 here says nothing about other-host
	calls := f.live.Calls()

	_, err := f.root.Acquire(context.Background(), "x", engAcqOpts("bob", f.holder(202), 0))
	engHeldBy(t, err)
	if st, _ := f.root.Get(context.Background(), "x"); st.State != StateLive {
		t.Errorf("state = %s, want live", st.State)
	}
	if f.live.Calls() != calls {
		t.Error("liveness was checked for a holder on another host")
	}

	f.clock.Advance(time.Minute)
	f.events.Take()
	f.mustAcquire("x", engAcqOpts("bob", f.holder(202), 0))
	if ev := f.events.Take(); len(ev) != 2 || ev[0].Reason != "expired" {
		t.Errorf("events = %+v, want an expired stale-break", ev)
	}
}

func TestChildCoHolderKeepsLockLive(t *testing.T) {
	f := newEngFixture(t)
	guard := f.holder(101)
	child := f.holder(102)
	l := f.mustAcquire("x", engAcqOpts("alice", guard, time.Hour))
	if _, err := f.root.Renew(context.Background(), "x", l.LockID, RenewOptions{Identity: Identity{Owner: "alice"}, Holder: guard, TTL: time.Hour, Child: child}); err != nil {
		t.Fatal(err)
	}
	if rec := f.readRecord("x"); rec.ChildPID != 102 || rec.ChildStart != child.Start {
		t.Fatalf("co-holder not recorded: %+v", rec)
	}
	f.live.Set(101, proc.Dead)
	_, err := f.root.Acquire(context.Background(), "x", engAcqOpts("bob", f.holder(202), 0))
	engHeldBy(t, err)
	if st, _ := f.root.Get(context.Background(), "x"); st.State != StateLive {
		t.Errorf("state with a live co-holder = %s", st.State)
	}
	f.live.Set(102, proc.Dead)
	if st, _ := f.root.Get(context.Background(), "x"); st.State != StateDead {
		t.Errorf("state with both gone = %s", st.State)
	}
	f.mustAcquire("x", engAcqOpts("bob", f.holder(202), 0))
}

func TestCorruptLockIsReplaced(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":       "\x00\x00garbage",
		"empty":         "",
		"wrong name":    `{"version":1,"name":"other","lock_id":"i","owner":"o","host":"h","pid":1,"pid_start":"","acquired_at":"2030-01-01T00:00:00Z","ttl_sec":0}`,
		"missing field": `{"version":1,"name":"x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newEngFixture(t)
			f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
			f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0)) // refresh: token stays 1
			f.writeRaw(f.lockPath("x"), content)
			f.events.Take()

			l := f.mustAcquire("x", engAcqOpts("bob", f.holder(2), 0))
			if l.Token <= 1 {
				t.Errorf("token after replacing a corrupt file = %d, want > 1", l.Token)
			}
			if rec := f.readRecord("x"); rec.LockID != l.LockID {
				t.Errorf("record not replaced")
			}
			ev := f.events.Take()
			if !reflect.DeepEqual(engTypes(ev), []EventType{EventCorruptBreak, EventAcquire}) || ev[0].Reason == "" {
				t.Errorf("events = %+v, want corrupt-break (with the reason) then acquire", ev)
			}
		})
	}
}

func TestFencingTokenStrictlyIncreases(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	var tokens []uint64
	take := func(o AcquireOptions) *Lock {
		t.Helper()
		l := f.mustAcquire("x", o)
		tokens = append(tokens, l.Token)
		return l
	}
	alice := Identity{Owner: "alice"}

	take(engAcqOpts("alice", f.holder(1), 0))
	if _, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: alice, Holder: f.holder(1)}); err != nil {
		t.Fatal(err)
	}
	take(engAcqOpts("alice", f.holder(1), 0)) // same holder, after release
	f.live.Set(1, proc.Dead)
	take(engAcqOpts("bob", f.holder(2), time.Minute)) // stale break (dead)
	f.clock.Advance(time.Minute)
	take(engAcqOpts("carol", f.holder(3), 0)) // stale break (expired)
	if _, err := f.root.Release(ctx, "x", ReleaseOptions{Mode: Force}); err != nil {
		t.Fatal(err)
	}
	take(engAcqOpts("dave", f.holder(4), 0)) // after force-break
	f.writeRaw(f.lockPath("x"), "corrupt")
	take(engAcqOpts("erin", f.holder(5), 0)) // after corrupt-break

	// Even if the guard file (which keeps the counter) were lost, a stale
	// break continues from the token in the record it replaces.
	if err := os.Remove(f.dir + "/locks/.x.lck"); err != nil {
		t.Fatal(err)
	}
	f.live.Set(5, proc.Dead)
	take(engAcqOpts("frank", f.holder(6), 0))

	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("tokens %v do not strictly increase", tokens)
		}
	}
	// Per name: another name starts its own sequence.
	if l := f.mustAcquire("y", engAcqOpts("alice", f.holder(1), time.Minute)); l.Token != 1 {
		t.Errorf("first token of another name = %d", l.Token)
	}
}

// The observer hears only what was stored: if the write fails, there was no
// acquisition and no break, whatever the callback had decided.
func TestEventsOnlyForStoredChanges(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("x", engAcqOpts("alice", f.holder(1), time.Minute))
	f.clock.Advance(time.Hour)
	f.events.Take()

	diskFull := errors.New("disk full")
	fs, err := filestore.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	broken := f.open(WithStore(&engFailingStore{Store: fs, err: diskFull}))
	ctx := context.Background()
	if _, err := broken.Acquire(ctx, "x", engAcqOpts("bob", f.holder(2), 0)); !errors.Is(err, diskFull) {
		t.Fatalf("Acquire = %v, want the write error", err)
	}
	if _, err := broken.Release(ctx, "x", ReleaseOptions{Mode: Force}); !errors.Is(err, diskFull) {
		t.Fatalf("Release = %v, want the write error", err)
	}
	rec := f.readRecord("x")
	if _, err := broken.Renew(ctx, "x", rec.LockID, RenewOptions{TTL: time.Minute}); !errors.Is(err, diskFull) {
		t.Fatalf("Renew = %v, want the write error", err)
	}
	if pruned, err := broken.Prune(ctx, Actor{}); !errors.Is(err, diskFull) || len(pruned) != 0 {
		t.Fatalf("Prune = %v, %v; want nothing pruned and the write error", pruned, err)
	}
	if ev := f.events.Take(); len(ev) != 0 {
		t.Fatalf("events for changes that were never stored: %v", engTypes(ev))
	}
	if got := f.readRecord("x"); got.LockID != rec.LockID || got.PID != 1 {
		t.Fatal("the failing store changed the record")
	}
	// A denial is reported even though nothing is written.
	f.clock.Advance(-time.Hour)
	if _, err := broken.Acquire(ctx, "x", engAcqOpts("bob", f.holder(2), 0)); err == nil {
		t.Fatal("acquired a held lock")
	}
	if ev := f.events.Take(); !reflect.DeepEqual(engTypes(ev), []EventType{EventDeny}) {
		t.Errorf("events = %v, want [deny]", engTypes(ev))
	}
}
