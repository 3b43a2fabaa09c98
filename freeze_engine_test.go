package lokt

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFreezeBlocksAcquire(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	ops := FreezeOptions{Identity: Identity{Owner: "release-mgr"}, Holder: f.holder(7), TTL: 10 * time.Minute, Reason: "release in progress"}

	for _, ttl := range []time.Duration{0, -time.Minute} {
		o := ops
		o.TTL = ttl
		if _, err := f.root.Freeze(ctx, "deploy", o); err == nil || !strings.Contains(err.Error(), "TTL") {
			t.Errorf("Freeze with TTL %v: %v, want an error asking for a TTL", ttl, err)
		}
	}
	if _, err := f.root.Freeze(ctx, "bad name", ops); err == nil {
		t.Error("Freeze of an invalid name succeeded")
	}
	if f.exists(f.freezePath("deploy")) {
		t.Fatal("a rejected freeze was stored")
	}

	// A lock held before the freeze is not interrupted.
	held := f.mustAcquire("deploy", engAcqOpts("alice", f.holder(1), 0))
	fr, err := f.root.Freeze(ctx, "deploy", ops)
	if err != nil {
		t.Fatal(err)
	}
	if fr.Owner != "release-mgr" || fr.Reason != "release in progress" || !fr.FrozenAt.Equal(engT0) || !fr.ExpiresAt.Equal(engT0.Add(10*time.Minute)) {
		t.Errorf("freeze = %+v", fr)
	}
	if st, err := f.root.Get(context.Background(), "deploy"); err != nil || st.State != StateLive || st.Lock.LockID != held.LockID {
		t.Errorf("the current holder lost its lock to a freeze: %+v, %v", st, err)
	}
	if _, err := f.root.Release(ctx, "deploy", ReleaseOptions{Identity: Identity{Owner: "alice"}, Holder: f.holder(1)}); err != nil {
		t.Fatalf("the current holder cannot release under a freeze: %v", err)
	}
	f.events.Take()

	f.clock.Advance(time.Minute)
	_, err = f.root.Acquire(ctx, "deploy", engAcqOpts("bob", f.holder(2), 0))
	var fe *FrozenError
	if !errors.As(err, &fe) || fe.Freeze.Reason != "release in progress" {
		t.Fatalf("Acquire of a frozen name: %v, want *FrozenError", err)
	}
	for _, want := range []string{`"deploy" is frozen`, "release-mgr@", "9m0s left", "release in progress"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if f.exists(f.lockPath("deploy")) {
		t.Fatal("a frozen acquire created the lock")
	}
	ev := f.events.Take()
	if len(ev) != 1 || ev[0].Type != EventFreezeDeny || ev[0].Freeze == nil || ev[0].Actor.Owner != "bob" {
		t.Errorf("events = %+v, want freeze-deny", ev)
	}
	if got, err := f.root.GetFreeze(context.Background(), "deploy"); err != nil || got.Reason != fr.Reason {
		t.Errorf("GetFreeze = %+v, %v", got, err)
	}
	if list, err := f.root.Freezes(context.Background()); err != nil || len(list) != 1 || list[0].Name != "deploy" {
		t.Errorf("Freezes = %+v, %v", list, err)
	}

	// Expiry lifts it, with nothing else done.
	f.clock.Advance(9 * time.Minute)
	f.mustAcquire("deploy", engAcqOpts("bob", f.holder(2), 0))
	if _, err := f.root.GetFreeze(context.Background(), "deploy"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetFreeze of an expired freeze: %v, want ErrNotFound", err)
	}
	if list, err := f.root.Freezes(context.Background()); err != nil || len(list) != 0 {
		t.Errorf("Freezes lists an expired freeze: %+v, %v", list, err)
	}
}

func TestUnfreeze(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	actor := Actor{Identity: Identity{Owner: "ops"}}
	if _, err := f.root.Unfreeze(ctx, "x", actor); !errors.Is(err, ErrNotFound) {
		t.Errorf("Unfreeze of an absent freeze: %v, want ErrNotFound", err)
	}
	if _, err := f.root.Unfreeze(ctx, "", actor); err == nil {
		t.Error("Unfreeze of an invalid name succeeded")
	}
	if _, err := f.root.Freeze(ctx, "x", FreezeOptions{TTL: time.Hour, Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	f.events.Take()
	lifted, err := f.root.Unfreeze(ctx, "x", actor)
	if err != nil || lifted.Reason != "r" {
		t.Fatalf("Unfreeze = %+v, %v", lifted, err)
	}
	if f.exists(f.freezePath("x")) {
		t.Fatal("freeze file still there")
	}
	f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	if ev := f.events.Take(); !reflect.DeepEqual(engTypes(ev), []EventType{EventUnfreeze, EventAcquire}) {
		t.Errorf("events = %v", engTypes(ev))
	}

	// An expired freeze is not "lifted", but it is cleaned up.
	if _, err := f.root.Freeze(ctx, "y", FreezeOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.root.Unfreeze(ctx, "y", actor); !errors.Is(err, ErrNotFound) {
		t.Errorf("Unfreeze of an expired freeze: %v, want ErrNotFound", err)
	}
	if f.exists(f.freezePath("y")) {
		t.Error("expired freeze file left behind")
	}
}

func TestFreezeReplacesFreeze(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	if _, err := f.root.Freeze(ctx, "x", FreezeOptions{TTL: time.Hour, Reason: "first"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.root.Freeze(ctx, "x", FreezeOptions{TTL: time.Minute, Reason: "second"}); err != nil {
		t.Fatal(err)
	}
	fr, err := f.root.GetFreeze(context.Background(), "x")
	if err != nil || fr.Reason != "second" || !fr.ExpiresAt.Equal(engT0.Add(time.Minute)) {
		t.Errorf("GetFreeze = %+v, %v; want the second freeze", fr, err)
	}
}

// Freezes live in their own namespace: a lock called freeze-x and the
// freeze of x are different things.
func TestFreezeNamespaceDoesNotCollide(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	if _, err := f.root.Freeze(ctx, "x", FreezeOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.mustAcquire("freeze-x", engAcqOpts("alice", f.holder(1), 0))
	if _, err := f.root.Acquire(ctx, "x", engAcqOpts("alice", f.holder(1), 0)); err == nil {
		t.Fatal("x is frozen but was acquired")
	}
	if _, err := f.root.GetFreeze(context.Background(), "freeze-x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the lock freeze-x reads as a freeze: %v", err)
	}
	if _, err := f.root.Get(context.Background(), "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the freeze of x reads as a lock: %v", err)
	}
	if _, err := f.root.Unfreeze(ctx, "x", Actor{}); err != nil {
		t.Fatal(err)
	}
	if st, err := f.root.Get(context.Background(), "freeze-x"); err != nil || st.State != StateLive {
		t.Errorf("lifting the freeze of x touched the lock freeze-x: %+v, %v", st, err)
	}
	// And the other way round: the lock x does not block freezing x.
	f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	if _, err := f.root.Freeze(ctx, "x", FreezeOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	list, err := f.root.List(context.Background())
	if err != nil || len(list) != 2 || list[0].Name != "freeze-x" || list[1].Name != "x" {
		t.Errorf("List = %+v, %v", list, err)
	}
}

func TestCorruptAndFutureFreezes(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()

	// A corrupt freeze fails safe: acquisition stops with advice to lift it.
	f.writeRaw(f.freezePath("x"), "junk")
	_, err := f.root.Acquire(ctx, "x", engAcqOpts("alice", f.holder(1), 0))
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "unfreeze x") {
		t.Fatalf("Acquire under a corrupt freeze: %v", err)
	}
	if f.exists(f.lockPath("x")) {
		t.Fatal("acquired under a corrupt freeze")
	}
	if _, err := f.root.Unfreeze(ctx, "x", Actor{}); err != nil {
		t.Fatalf("Unfreeze of a corrupt freeze: %v", err)
	}
	f.mustAcquire("x", engAcqOpts("alice", f.holder(1), 0))
	// A freeze whose record names another freeze is corrupt too.
	f.writeRaw(f.freezePath("y"), `{"version":1,"name":"z","owner":"o","host":"h","pid":1,"frozen_at":"2030-01-01T00:00:00Z","expires_at":"2099-01-01T00:00:00Z","ttl_sec":1}`)
	if _, err := f.root.GetFreeze(context.Background(), "y"); !errors.As(err, &ce) {
		t.Errorf("GetFreeze of a misnamed freeze: %v", err)
	}
	// Freeze over a corrupt freeze replaces it.
	if _, err := f.root.Freeze(ctx, "y", FreezeOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.root.GetFreeze(context.Background(), "y"); err != nil {
		t.Error(err)
	}

	// A newer freeze is never rewritten or deleted.
	future := `{"version":99,"name":"v","expires_at":"whenever"}`
	f.writeRaw(f.freezePath("v"), future)
	var uv *UnsupportedVersionError
	if _, err := f.root.Freeze(ctx, "v", FreezeOptions{TTL: time.Hour}); !errors.As(err, &uv) {
		t.Errorf("Freeze over a v99 freeze: %v", err)
	}
	if _, err := f.root.Unfreeze(ctx, "v", Actor{}); !errors.As(err, &uv) {
		t.Errorf("Unfreeze of a v99 freeze: %v", err)
	}
	_, err = f.root.Acquire(ctx, "v", engAcqOpts("alice", f.holder(1), 0))
	if !errors.As(err, &uv) || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("Acquire under a v99 freeze: %v", err)
	} else if strings.Contains(err.Error(), "unfreeze") {
		t.Errorf("advice to run unfreeze, which refuses a v99 freeze: %v", err)
	}
	f.clock.Advance(1000 * time.Hour)
	if _, err := f.root.Prune(ctx, Actor{}); err != nil {
		t.Errorf("Prune: %v", err)
	}
	if got, _ := os.ReadFile(f.freezePath("v")); string(got) != future {
		t.Errorf("v99 freeze changed to %q", got)
	}
	if _, err := f.root.Freezes(context.Background()); !errors.As(err, &uv) {
		t.Errorf("Freezes with a v99 freeze: %v", err)
	}
}

// A freeze blocks new acquisitions, not the current holder: re-running
// lock to extend its TTL is a refresh and goes through.
func TestFreezeAllowsRefreshByHolder(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	held := f.mustAcquire("deploy", engAcqOpts("alice", f.holder(1), time.Minute))
	if _, err := f.root.Freeze(ctx, "deploy", FreezeOptions{Identity: Identity{Owner: "rm"}, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	again, err := f.root.Acquire(ctx, "deploy", engAcqOpts("alice", f.holder(1), time.Minute))
	if err != nil {
		t.Fatalf("refresh by the holder under a freeze: %v", err)
	}
	if again.LockID != held.LockID || !again.ExpiresAt.Equal(engT0.Add(90*time.Second)) {
		t.Errorf("refresh = %+v, want same lock_id and a new expiry", again)
	}
	var fe *FrozenError
	if _, err := f.root.Acquire(ctx, "deploy", engAcqOpts("alice", f.holder(2), time.Minute)); !errors.As(err, &fe) {
		t.Errorf("another holder under a freeze: %v, want *FrozenError", err)
	}
}
