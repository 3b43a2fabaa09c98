package lokt

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/store"
)

func TestGetAndListStates(t *testing.T) {
	f := newEngFixture(t)
	f.mustAcquire("live", engAcqOpts("alice", f.holder(1), time.Hour))
	f.mustAcquire("expired", engAcqOpts("alice", f.holder(2), time.Minute))
	f.mustAcquire("dead", engAcqOpts("alice", f.holder(3), 0))
	f.writeRaw(f.lockPath("corrupt"), "{")
	f.writeRaw(f.lockPath("future"), strings.Replace(engFutureLock, "NAME", "future", 1))
	f.writeRaw(filepath.Join(f.dir, "locks", ".hidden.json"), "{}")
	f.writeRaw(filepath.Join(f.dir, "locks", "bad name.json"), "{}")
	f.live.Set(3, proc.Dead)
	f.clock.Advance(time.Minute)

	want := map[string]State{
		"live": StateLive, "expired": StateExpired, "dead": StateDead,
		"corrupt": StateCorrupt, "future": StateUnsupported,
	}
	for name, state := range want {
		st, err := f.root.Get(context.Background(), name)
		if err != nil {
			t.Fatalf("Get(%q): %v", name, err)
		}
		if st.State != state || st.Name != name || !st.Now.Equal(engT0.Add(time.Minute)) {
			t.Errorf("Get(%q) = %+v, want state %s", name, st, state)
		}
		hasLock := state != StateCorrupt && state != StateUnsupported
		if (st.Lock != nil) != hasLock || (st.Problem != nil) == hasLock {
			t.Errorf("Get(%q): Lock %v, Problem %v", name, st.Lock, st.Problem)
		}
	}
	if st, _ := f.root.Get(context.Background(), "corrupt"); st != nil {
		var ce *CorruptError
		if !errors.As(st.Problem, &ce) || ce.Name != "corrupt" || ce.Path != f.lockPath("corrupt") || ce.Unwrap() == nil {
			t.Errorf("corrupt Problem = %#v", st.Problem)
		}
	}

	list, err := f.root.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range list {
		names = append(names, st.Name)
		if st.State != want[st.Name] {
			t.Errorf("List: %s is %s, want %s", st.Name, st.State, want[st.Name])
		}
	}
	if strings.Join(names, ",") != "corrupt,dead,expired,future,live" {
		t.Errorf("List names = %v, want the five records sorted", names)
	}
	for _, s := range []State{StateExpired, StateDead, StateCorrupt} {
		if !s.Stale() {
			t.Errorf("%s.Stale() = false", s)
		}
	}
	for _, s := range []State{StateLive, StateUnsupported} {
		if s.Stale() {
			t.Errorf("%s.Stale() = true", s)
		}
	}
}

func TestGetErrors(t *testing.T) {
	f := newEngFixture(t)
	if _, err := f.root.Get(context.Background(), "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing): %v, want ErrNotFound", err)
	}
	if _, err := f.root.Get(context.Background(), "../x"); err == nil {
		t.Error("Get of an invalid name succeeded")
	}
	outside := filepath.Join(t.TempDir(), "secret")
	f.writeRaw(outside, "secret")
	if err := os.Symlink(outside, f.lockPath("link")); err != nil {
		t.Fatal(err)
	}
	_, err := f.root.Get(context.Background(), "link")
	if !errors.Is(err, store.ErrUnsafe) || !strings.Contains(err.Error(), `lock "link"`) {
		t.Errorf("Get(symlink): %v, want ErrUnsafe naming the lock", err)
	}
	// List reports the unreadable record and still lists the others.
	f.mustAcquire("ok", engAcqOpts("alice", f.holder(1), 0))
	list, err := f.root.List(context.Background())
	if !errors.Is(err, store.ErrUnsafe) || len(list) != 1 || list[0].Name != "ok" {
		t.Errorf("List = %+v, %v", list, err)
	}
	// The symlink is refused by every state change too.
	_, err = f.root.Acquire(context.Background(), "link", engAcqOpts("alice", f.holder(1), 0))
	if !errors.Is(err, store.ErrUnsafe) {
		t.Errorf("Acquire over a symlink: %v", err)
	}
	if got, _ := os.ReadFile(outside); string(got) != "secret" {
		t.Error("symlink target changed")
	}
}

func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "root")
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Dir() != dir || r.Host() != proc.Hostname() {
		t.Errorf("Dir %q Host %q", r.Dir(), r.Host())
	}
	for _, sub := range []string{"locks", "freezes"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil {
		t.Error("Open of a regular file succeeded")
	}
}

func TestLocate(t *testing.T) {
	cwd := t.TempDir()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	loc, err := Locate(cwd, env(map[string]string{"LOKT_ROOT": "/srv/locks"}))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Dir != "/srv/locks" || loc.Source != "env" || !strings.Contains(loc.Reason, "LOKT_ROOT") {
		t.Errorf("Locate with LOKT_ROOT = %+v", loc)
	}
	if _, err := Locate(cwd, env(map[string]string{"LOKT_ROOT": "rel/locks"})); err == nil {
		t.Error("relative LOKT_ROOT accepted")
	}
	phys, _ := filepath.EvalSymlinks(cwd)
	// Without it (and outside git): the per-user root, created by nobody
	// yet. The temporary directory could sit below a .lokt or a repository
	// on some machine; then the other rules apply and this check says
	// nothing.
	home := t.TempDir()
	loc, err = Locate(cwd, env(map[string]string{"HOME": home, "LocalAppData": home}))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Source == "user" && !strings.HasPrefix(loc.Dir, home) {
		t.Errorf("Locate without LOKT_ROOT = %+v", loc)
	}
	if loc.Source == "env" {
		t.Errorf("Locate without LOKT_ROOT chose by environment: %+v", loc)
	}
	if _, err := os.Lstat(filepath.Join(phys, ".lokt")); !errors.Is(err, os.ErrNotExist) {
		t.Error("Locate created the root")
	}
	if _, err := Locate(filepath.Join(cwd, "missing"), env(nil)); err == nil {
		t.Error("Locate from a missing directory succeeded")
	}
}

func TestDefaultIdentity(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	id := DefaultIdentity(env(map[string]string{"LOKT_OWNER": "ci-bot", "LOKT_AGENT_ID": "agent-3", "USER": "ignored"}))
	if id != (Identity{Owner: "ci-bot", AgentID: "agent-3"}) {
		t.Errorf("with LOKT_OWNER: %+v", id)
	}
	id = DefaultIdentity(env(map[string]string{"USER": "from-env"}))
	want := ""
	if u, err := user.Current(); err == nil && u.Username != "" {
		want = u.Username
	} else {
		want = "from-env"
	}
	if id.Owner != want || id.AgentID != "" {
		t.Errorf("without LOKT_OWNER: %+v, want owner %q", id, want)
	}
}

func TestProcessHolder(t *testing.T) {
	h, err := ProcessHolder(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if h.PID != os.Getpid() || h.Host != proc.Hostname() || h.Start == "" {
		t.Errorf("ProcessHolder(self) = %+v", h)
	}
	if Self() != h {
		t.Errorf("Self() = %+v, want %+v", Self(), h)
	}
	if h, err := ProcessHolder(0); err != nil || h != (Holder{Host: proc.Hostname()}) {
		t.Errorf("ProcessHolder(0) = %+v, %v", h, err)
	}
	_, err = ProcessHolder(1<<31 - 2)
	var np *NoProcessError
	if !errors.As(err, &np) || np.PID != 1<<31-2 || !strings.Contains(err.Error(), strconv.Itoa(1<<31-2)) {
		t.Errorf("ProcessHolder(no such pid) = %v", err)
	}
	// The real liveness check agrees that the test process holds its lock.
	r, err := Open(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Acquire(context.Background(), "self", AcquireOptions{Identity: Identity{Owner: "me"}, Holder: h}); err != nil {
		t.Fatal(err)
	}
	if st, err := r.Get(context.Background(), "self"); err != nil || st.State != StateLive {
		t.Errorf("own lock: %+v, %v", st, err)
	}
}

func TestEmit(t *testing.T) {
	// No observer: nothing happens, nothing panics.
	r, err := Open(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	r.Emit(Event{Type: EventLost})

	f := newEngFixture(t)
	f.root.Emit(Event{Type: EventLost, Name: "x", Reason: "force-broken"})
	at := engT0.Add(-time.Hour)
	f.root.Emit(Event{Type: EventLost, Time: at})
	ev := f.events.Take()
	if len(ev) != 2 || !ev[0].Time.Equal(engT0) || ev[0].Reason != "force-broken" || !ev[1].Time.Equal(at) {
		t.Errorf("events = %+v: a zero time is filled from the clock, a given one kept", ev)
	}
}

func TestErrorMessages(t *testing.T) {
	now := engT0
	exp := now.Add(90 * time.Second)
	l := &Lock{Name: "x", Owner: "alice", AgentID: "bot-1", Holder: Holder{Host: "h", PID: 0}, AcquiredAt: now.Add(-1500 * time.Millisecond), ExpiresAt: &exp}
	msg := (&HeldError{Lock: l, Now: now}).Error()
	for _, want := range []string{"alice@h", "(agent bot-1)", "(no process)", "(2s ago)", "(in 1m30s)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("HeldError %q lacks %q", msg, want)
		}
	}
	l.ExpiresAt, l.PID = nil, 42
	msg = (&NotOwnerError{Lock: l, Caller: "bob", Now: now}).Error()
	for _, want := range []string{"pid 42", "no expiry", `not "bob"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("NotOwnerError %q lacks %q", msg, want)
		}
	}
	fr := &Freeze{Name: "x", Owner: "o", Host: "h", ExpiresAt: now.Add(time.Minute)}
	if msg := (&FrozenError{Freeze: fr, Now: now}).Error(); !strings.HasSuffix(msg, "(1m0s left)") {
		t.Errorf("FrozenError without a reason: %q", msg)
	}
	for d, want := range map[time.Duration]time.Duration{
		1500 * time.Microsecond:   2 * time.Millisecond,
		1499 * time.Millisecond:   time.Second,
		-90500 * time.Millisecond: -91 * time.Second,
		0:                         0,
	} {
		if got := roundDur(d); got != want {
			t.Errorf("roundDur(%v) = %v, want %v", d, got, want)
		}
	}
}
