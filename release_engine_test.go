package lokt

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/store"
)

func TestRenew(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	h := f.holder(1)
	l := f.mustAcquire("x", engAcqOpts("alice", h, time.Minute))
	f.events.Take()

	f.clock.Advance(40 * time.Second)
	r, err := f.root.Renew(ctx, "x", l.LockID, RenewOptions{Identity: Identity{Owner: "alice"}, Holder: h, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := engT0.Add(40 * time.Second)
	if r.LockID != l.LockID || r.Token != l.Token || !r.AcquiredAt.Equal(engT0) ||
		!r.ExpiresAt.Equal(now.Add(time.Minute)) || !r.RenewedAt.Equal(now) {
		t.Errorf("renewed lock %+v", r)
	}
	if rec := f.readRecord("x"); !rec.ExpiresAt.Equal(now.Add(time.Minute)) {
		t.Errorf("stored expiry %v", rec.ExpiresAt)
	}
	// Renewed past the first expiry, it is still held.
	f.clock.Advance(30 * time.Second)
	if _, err := f.root.Acquire(ctx, "x", engAcqOpts("bob", f.holder(2), 0)); err == nil {
		t.Fatal("a renewed lock was taken at its original expiry")
	}
	if ev := f.events.Take(); !reflect.DeepEqual(engTypes(ev), []EventType{EventRenew, EventDeny}) {
		t.Errorf("events = %v", engTypes(ev))
	}

	// Wrong lock_id: lost, nothing changes.
	before, _ := os.ReadFile(f.lockPath("x"))
	if _, err := f.root.Renew(ctx, "x", "not-my-id", RenewOptions{TTL: time.Hour}); !errors.Is(err, ErrLost) {
		t.Errorf("Renew with a wrong lock_id: %v, want ErrLost", err)
	}
	if after, _ := os.ReadFile(f.lockPath("x")); string(after) != string(before) {
		t.Error("a failed renewal changed the record")
	}
	if _, err := f.root.Renew(ctx, "x", l.LockID, RenewOptions{TTL: -time.Second}); err == nil {
		t.Error("Renew with a negative TTL succeeded")
	}
	if _, err := f.root.Renew(ctx, "bad/name", l.LockID, RenewOptions{TTL: time.Minute}); err == nil {
		t.Error("Renew of an invalid name succeeded")
	}

	// Force-broken: lost.
	if _, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "ops"}, Mode: Force}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.root.Renew(ctx, "x", l.LockID, RenewOptions{TTL: time.Minute}); !errors.Is(err, ErrLost) {
		t.Errorf("Renew after force-break: %v, want ErrLost", err)
	}
	if f.exists(f.lockPath("x")) {
		t.Error("a lost renewal recreated the lock")
	}

	// Broken as stale and retaken by someone else: lost.
	mine := f.mustAcquire("y", engAcqOpts("alice", h, time.Minute))
	f.clock.Advance(time.Minute)
	theirs := f.mustAcquire("y", engAcqOpts("bob", f.holder(2), time.Minute))
	_, err = f.root.Renew(ctx, "y", mine.LockID, RenewOptions{TTL: time.Minute})
	if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "bob") {
		t.Errorf("Renew after a stale break: %v, want ErrLost naming the new owner", err)
	}
	if rec := f.readRecord("y"); rec.LockID != theirs.LockID {
		t.Error("a lost renewal overwrote the new holder's lock")
	}
}

func TestRenewNoProcessLockNeedsTTL(t *testing.T) {
	f := newEngFixture(t)
	l := f.mustAcquire("x", engAcqOpts("alice", Holder{Host: f.root.Host()}, time.Minute))
	if _, err := f.root.Renew(context.Background(), "x", l.LockID, RenewOptions{}); err == nil {
		t.Error("Renew without TTL of a lock with no process succeeded: it could never go stale")
	}
	f.readRecord("x") // still a valid record
	if _, err := f.root.Renew(context.Background(), "x", l.LockID, RenewOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseOwn(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	l := f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	f.events.Take()

	// Another owner label may not release it.
	_, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "bob"}, Holder: f.holder(2)})
	var no *NotOwnerError
	if !errors.As(err, &no) || no.Lock.LockID != l.LockID || no.Caller != "bob" {
		t.Fatalf("Release by another owner: %v, want *NotOwnerError", err)
	}
	if !strings.Contains(err.Error(), `owner "alice", not "bob"`) {
		t.Errorf("message %q", err)
	}
	if !f.exists(f.lockPath("x")) {
		t.Fatal("the lock was removed by a non-owner")
	}
	// The owner label alone is not enough while the holder runs.
	_, err = f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}, Holder: f.holder(3)})
	var live *LiveHolderError
	if !errors.As(err, &live) || live.Lock.LockID != l.LockID || live.Foreign != "" {
		t.Fatalf("Release by the owner from another process: %v, want *LiveHolderError", err)
	}
	if !strings.Contains(err.Error(), "still running and is not the caller") {
		t.Errorf("message %q", err)
	}
	// The holder itself may.
	removed, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}, Holder: f.holder(1)})
	if err != nil || removed.LockID != l.LockID {
		t.Fatalf("Release by the holder: %+v, %v", removed, err)
	}
	if f.exists(f.lockPath("x")) {
		t.Fatal("released lock still on disk")
	}
	ev := f.events.Take()
	if len(ev) != 1 || ev[0].Type != EventRelease || ev[0].Lock.LockID != l.LockID {
		t.Errorf("events = %+v, want one release", ev)
	}
	if _, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Release of a missing lock: %v, want ErrNotFound", err)
	}
	if _, err := f.root.Release(ctx, "..", ReleaseOptions{}); err == nil {
		t.Error("Release of an invalid name succeeded")
	}
	if ev := f.events.Take(); len(ev) != 0 {
		t.Errorf("failed releases emitted %v", engTypes(ev))
	}
}

// TestReleaseOwnLiveHolder: the rule for a running holder that is not the
// caller, and what counts as the caller.
func TestReleaseOwnLiveHolder(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	alice := ReleaseOptions{Identity: Identity{Owner: "alice"}, Holder: f.holder(3)}
	var live *LiveHolderError

	// A dead holder: the owner releases it from any process, as a release.
	f.mustAcquire("dead", engAcqOpts("alice", f.holder(10), 0))
	f.live.Set(10, proc.Dead)
	if _, err := f.root.Release(ctx, "dead", alice); err != nil {
		t.Fatalf("release of a dead holder's lock: %v", err)
	}
	// An expired lock whose holder still runs: nothing left to protect.
	f.mustAcquire("expired", engAcqOpts("alice", f.holder(11), time.Minute))
	f.clock.Advance(2 * time.Minute)
	if _, err := f.root.Release(ctx, "expired", alice); err != nil {
		t.Fatalf("release of an expired lock: %v", err)
	}
	// No holder process (--pid 0): the owner releases it.
	f.mustAcquire("nopid", engAcqOpts("alice", Holder{Host: f.root.Host()}, time.Hour))
	if _, err := f.root.Release(ctx, "nopid", alice); err != nil {
		t.Fatalf("release of a no-process lock: %v", err)
	}
	f.events.Take()

	// A running holder that IsCaller vouches for (an ancestor).
	f.mustAcquire("anc", engAcqOpts("alice", f.holder(12), 0))
	asked := []int{}
	o := alice
	o.IsCaller = func(h Holder) bool { asked = append(asked, h.PID); return h == f.holder(12) }
	if _, err := f.root.Release(ctx, "anc", o); err != nil {
		t.Fatalf("release by a descendant of the holder: %v", err)
	}
	if !reflect.DeepEqual(asked, []int{12}) {
		t.Errorf("IsCaller asked about %v, want [12]", asked)
	}
	// guard's command (the co-holder) counts as the holder too.
	g := f.mustAcquire("guarded", engAcqOpts("alice", f.holder(13), 0))
	if _, err := f.root.Renew(ctx, "guarded", g.LockID, RenewOptions{Identity: Identity{Owner: "alice"}, Holder: f.holder(13), Child: f.holder(14)}); err != nil {
		t.Fatal(err)
	}
	o = alice
	o.Holder = f.holder(14)
	if _, err := f.root.Release(ctx, "guarded", o); err != nil {
		t.Fatalf("release by the guarded command: %v", err)
	}

	// A holder on another host cannot be checked: --force only.
	remote := f.mustAcquire("remote", engAcqOpts("alice", Holder{Host: "elsewhere", PID: 5, Start: "s"}, 0))
	_, err := f.root.Release(ctx, "remote", alice)
	if !errors.As(err, &live) || live.Foreign != "on another host" || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("release of a remote holder's lock: %v, want a remote *LiveHolderError", err)
	}
	f.events.Take()

	// Force with a lock_id precondition: only that acquisition is broken,
	// and the event names the actor and, as its lock, the victim.
	force := ReleaseOptions{Identity: Identity{Owner: "ops"}, Holder: f.holder(3), Mode: Force, LockID: "other-id"}
	if _, err := f.root.Release(ctx, "remote", force); !errors.Is(err, ErrLost) {
		t.Fatalf("forced release with a stale lock_id: %v, want ErrLost", err)
	}
	force.LockID = remote.LockID
	if _, err := f.root.Release(ctx, "remote", force); err != nil {
		t.Fatal(err)
	}
	ev := f.events.Take()
	if len(ev) != 1 || ev[0].Type != EventForceBreak || ev[0].Actor.Owner != "ops" || ev[0].Actor.PID != 3 ||
		ev[0].Lock.Owner != "alice" || ev[0].Lock.PID != 5 || ev[0].Reason != string(StateLive) {
		t.Errorf("events = %+v, want one force-break by ops of alice's lock", ev)
	}

	// AsOwner: another label's dead lock, released with the real actor.
	f.mustAcquire("bobs", engAcqOpts("bob", f.holder(15), 0))
	f.live.Set(15, proc.Dead)
	f.events.Take()
	o = alice
	o.AsOwner = "bob"
	if _, err := f.root.Release(ctx, "bobs", o); err != nil {
		t.Fatal(err)
	}
	if ev := f.events.Take(); len(ev) != 1 || ev[0].Type != EventRelease || ev[0].Actor.Owner != "alice" || ev[0].Lock.Owner != "bob" {
		t.Errorf("events = %+v, want a release by alice of bob's lock", ev)
	}
}

func TestReleaseByLockID(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	l := f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	if _, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}, LockID: "stale-id"}); !errors.Is(err, ErrLost) {
		t.Fatalf("Release with another lock_id: %v, want ErrLost", err)
	}
	if !f.exists(f.lockPath("x")) {
		t.Fatal("mismatched lock_id released the lock")
	}
	if _, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}, LockID: l.LockID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.root.Release(ctx, "x", ReleaseOptions{LockID: l.LockID}); !errors.Is(err, ErrNotFound) {
		t.Errorf("second release: %v, want ErrNotFound", err)
	}
}

func TestBreakStaleAndForce(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	ops := ReleaseOptions{Identity: Identity{Owner: "ops"}, Holder: f.holder(9), Mode: BreakStale}

	live := f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	if _, err := f.root.Release(ctx, "x", ops); engHeldBy(t, err).LockID != live.LockID {
		t.Fatal("HeldError does not name the live lock")
	}
	f.live.Set(1, proc.Dead)
	f.events.Take()
	removed, err := f.root.Release(ctx, "x", ops)
	if err != nil || removed.LockID != live.LockID {
		t.Fatalf("BreakStale of a dead holder's lock: %+v, %v", removed, err)
	}
	if ev := f.events.Take(); len(ev) != 1 || ev[0].Type != EventStaleBreak || ev[0].Reason != "dead" {
		t.Errorf("events = %+v", ev)
	}

	f.mustAcquire("x", engAcqOpts("alice", f.holder(2), time.Minute))
	f.clock.Advance(time.Minute)
	f.events.Take()
	if _, err := f.root.Release(ctx, "x", ops); err != nil {
		t.Fatalf("BreakStale of an expired lock: %v", err)
	}
	if ev := f.events.Take(); len(ev) != 1 || ev[0].Reason != "expired" {
		t.Errorf("events = %+v", ev)
	}

	// Force removes a live lock, and says it was live.
	forced := f.mustAcquire("x", engAcqOpts("alice", f.holder(3), 0))
	f.events.Take()
	ops.Mode = Force
	removed, err = f.root.Release(ctx, "x", ops)
	if err != nil || removed.LockID != forced.LockID {
		t.Fatalf("Force: %+v, %v", removed, err)
	}
	if ev := f.events.Take(); len(ev) != 1 || ev[0].Type != EventForceBreak || ev[0].Reason != "live" {
		t.Errorf("events = %+v, want force-break of a live lock", ev)
	}
	if _, err := f.root.Release(ctx, "x", ops); !errors.Is(err, ErrNotFound) {
		t.Errorf("Force of a missing lock: %v, want ErrNotFound", err)
	}
}

func TestReleaseCorrupt(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	f.writeRaw(f.lockPath("x"), "{not json")
	_, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}})
	var corrupt *CorruptError
	if !errors.As(err, &corrupt) || !strings.Contains(err.Error(), "--break-stale") {
		t.Fatalf("plain release of a corrupt file: %v, want *CorruptError with advice", err)
	}
	if !f.exists(f.lockPath("x")) {
		t.Fatal("plain release removed a corrupt file")
	}
	if _, err := f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}, LockID: "id"}); !errors.As(err, &corrupt) {
		t.Errorf("release by lock_id of a corrupt file: %v", err)
	}
	f.events.Take()
	for _, mode := range []ReleaseMode{BreakStale, Force} {
		f.writeRaw(f.lockPath("x"), "{not json")
		removed, err := f.root.Release(ctx, "x", ReleaseOptions{Mode: mode})
		if err != nil || removed != nil {
			t.Fatalf("mode %d on a corrupt file: %+v, %v", mode, removed, err)
		}
		if f.exists(f.lockPath("x")) {
			t.Fatalf("mode %d left the corrupt file", mode)
		}
		if ev := f.events.Take(); len(ev) != 1 || ev[0].Type != EventCorruptBreak {
			t.Errorf("events = %+v, want corrupt-break", ev)
		}
	}
}

// A record from a newer protocol is never rewritten or deleted, whatever
// the operation.
func TestUnsupportedVersionIsUntouched(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	content := strings.Replace(engFutureLock, "NAME", "x", 1)
	f.writeRaw(f.lockPath("x"), content)
	f.mustAcquire("other", engAcqOpts("alice", f.holder(1), time.Minute))
	f.clock.Advance(time.Hour) // "other" is now stale; x would be too, if it were v1
	st0, err := os.Stat(f.lockPath("x"))
	if err != nil {
		t.Fatal(err)
	}

	check := func(op string, err error) {
		t.Helper()
		var uv *UnsupportedVersionError
		if !errors.As(err, &uv) || uv.Version != 99 {
			t.Errorf("%s: %v, want *UnsupportedVersionError for version 99", op, err)
		} else if !strings.Contains(err.Error(), "upgrade") || !strings.Contains(err.Error(), f.lockPath("x")) {
			t.Errorf("%s: message %q lacks the path or the advice to upgrade", op, err)
		}
	}
	_, err = f.root.Acquire(ctx, "x", engAcqOpts("alice", f.holder(1), 0))
	check("acquire", err)
	for _, mode := range []ReleaseMode{ReleaseOwn, BreakStale, Force} {
		_, err = f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}, Mode: mode})
		check("release", err)
	}
	_, err = f.root.Release(ctx, "x", ReleaseOptions{Identity: Identity{Owner: "alice"}, LockID: "id"})
	check("release by lock_id", err)
	_, err = f.root.Renew(ctx, "x", "id", RenewOptions{TTL: time.Minute})
	check("renew", err)
	pruned, err := f.root.Prune(ctx, Actor{})
	check("prune", err)
	if !reflect.DeepEqual(pruned, []string{"other"}) {
		t.Errorf("Prune removed %v, want only the stale v1 lock", pruned)
	}
	st, err := f.root.Get(context.Background(), "x")
	if err != nil || st.State != StateUnsupported || st.Lock != nil {
		t.Errorf("Get = %+v, %v; want state unsupported", st, err)
	} else {
		check("get", st.Problem)
	}

	got, err := os.ReadFile(f.lockPath("x"))
	if err != nil || string(got) != content {
		t.Fatalf("file now %q (%v), want it byte for byte unchanged", got, err)
	}
	st1, err := os.Stat(f.lockPath("x"))
	if err != nil || !os.SameFile(st0, st1) || !st1.ModTime().Equal(st0.ModTime()) {
		t.Error("the file was replaced or rewritten")
	}
}

func TestPrune(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	f.mustAcquire("live", engAcqOpts("alice", f.holder(1), 0))
	f.mustAcquire("expired", engAcqOpts("alice", f.holder(2), time.Minute))
	f.mustAcquire("dead", engAcqOpts("alice", f.holder(3), 0))
	f.mustAcquire("unknown", engAcqOpts("alice", f.holder(4), 0))
	f.mustAcquire("remote", engAcqOpts("alice", Holder{Host: "other", PID: 3}, 0))
	f.writeRaw(f.lockPath("corrupt"), "garbage")
	f.writeRaw(f.dir+"/locks/not a name.json", "garbage") // not lokt's: left alone
	if _, err := f.root.Freeze(ctx, "frozen-long", FreezeOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.root.Freeze(ctx, "frozen-short", FreezeOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	f.live.Set(3, proc.Dead)
	f.live.Set(4, proc.Unknown)
	f.clock.Advance(time.Minute)
	f.events.Take()

	actor := Actor{Identity: Identity{Owner: "janitor"}}
	pruned, err := f.root.Prune(ctx, actor)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"corrupt", "dead", "expired"}; !reflect.DeepEqual(pruned, want) {
		t.Errorf("pruned %v, want %v", pruned, want)
	}
	for name, want := range map[string]bool{"live": true, "unknown": true, "remote": true, "expired": false, "dead": false, "corrupt": false, "not a name": true} {
		if got := f.exists(f.lockPath(name)); got != want {
			t.Errorf("%s exists = %v, want %v", name, got, want)
		}
	}
	if !f.exists(f.freezePath("frozen-long")) || f.exists(f.freezePath("frozen-short")) {
		t.Error("Prune must remove the expired freeze and only it")
	}
	ev := f.events.Take()
	got := map[string]string{}
	for _, e := range ev {
		if e.Actor.Owner != "janitor" {
			t.Errorf("event %v by %q", e.Type, e.Actor.Owner)
		}
		got[e.Name] = string(e.Type) + ":" + e.Reason
	}
	if c := got["corrupt"]; !strings.HasPrefix(c, "corrupt-break:") || len(c) == len("corrupt-break:") {
		t.Errorf("corrupt file event %q, want corrupt-break with the reason", c)
	}
	delete(got, "corrupt")
	want := map[string]string{"dead": "auto-prune:dead", "expired": "auto-prune:expired", "frozen-short": "auto-prune:freeze expired"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	// Nothing left to prune.
	if pruned, err := f.root.Prune(ctx, actor); err != nil || len(pruned) != 0 {
		t.Errorf("second Prune: %v, %v", pruned, err)
	}
}

func TestPruneSkipsUnsafeRecords(t *testing.T) {
	f := newEngFixture(t)
	outside := t.TempDir() + "/target"
	f.writeRaw(outside, "outside")
	if err := os.Symlink(outside, f.lockPath("link")); err != nil {
		t.Fatal(err)
	}
	_, err := f.root.Prune(context.Background(), Actor{})
	if !errors.Is(err, store.ErrUnsafe) || !strings.Contains(err.Error(), "remove it by hand") {
		t.Errorf("Prune over a symlink: %v, want ErrUnsafe with advice", err)
	}
	if got, _ := os.ReadFile(outside); string(got) != "outside" {
		t.Error("symlink target changed")
	}
}
