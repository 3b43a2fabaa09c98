package lokt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/store"
)

// Helpers for the engine tests. Names start with "eng" so they cannot clash
// with other test files of this package.

// engT0 is the fake clock's start: a fixed instant, not the wall clock, so
// every expiry in these tests is exact.
var engT0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

type engClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *engClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *engClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// engLiveness answers the process check from a table: any pid not in it is
// Alive. It counts calls so a test can prove it was not consulted.
type engLiveness struct {
	mu    sync.Mutex
	state map[int]proc.Liveness
	calls int
}

func (l *engLiveness) Set(pid int, s proc.Liveness) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state[pid] = s
}

func (l *engLiveness) Check(pid int, _ string) proc.Liveness {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if s, ok := l.state[pid]; ok {
		return s
	}
	return proc.Alive
}

func (l *engLiveness) Calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

type engEvents struct {
	mu     sync.Mutex
	events []Event
}

func (r *engEvents) Observe(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Take returns the events so far and forgets them.
func (r *engEvents) Take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func engTypes(events []Event) []EventType {
	var out []EventType
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

type engFixture struct {
	t      *testing.T
	dir    string
	root   *Root
	clock  *engClock
	live   *engLiveness
	events *engEvents
}

func newEngFixture(t *testing.T, opts ...Option) *engFixture {
	t.Helper()
	f := &engFixture{
		t:      t,
		dir:    filepath.Join(t.TempDir(), "root"),
		clock:  &engClock{now: engT0},
		live:   &engLiveness{state: map[int]proc.Liveness{}},
		events: &engEvents{},
	}
	f.root = f.open(opts...)
	return f
}

// open opens another Root on the same directory, clock and liveness table,
// as another process would.
func (f *engFixture) open(opts ...Option) *Root {
	f.t.Helper()
	base := []Option{WithClock(f.clock.Now), withLiveness(f.live.Check), WithObserver(f.events.Observe)}
	r, err := Open(f.dir, append(base, opts...)...)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// holder is a fake process on this host.
func (f *engFixture) holder(pid int) Holder {
	return Holder{Host: f.root.Host(), PID: pid, Start: "start-" + strconv.Itoa(pid)}
}

func engAcqOpts(owner string, h Holder, ttl time.Duration) AcquireOptions {
	return AcquireOptions{Identity: Identity{Owner: owner}, Holder: h, TTL: ttl}
}

func (f *engFixture) mustAcquire(name string, o AcquireOptions) *Lock {
	f.t.Helper()
	l, err := f.root.Acquire(context.Background(), name, o)
	if err != nil {
		f.t.Fatalf("Acquire(%q) by pid %d: %v", name, o.Holder.PID, err)
	}
	return l
}

// waitInLine starts Acquire(ctx, name, o) with o.Wait set and returns once
// it is blocked (its first attempt found name taken); its result arrives
// on the channel.
func (f *engFixture) waitInLine(ctx context.Context, name string, o AcquireOptions) <-chan error {
	queued := make(chan struct{})
	var once sync.Once
	o.Wait = true
	o.OnBlocked = func(error) { once.Do(func() { close(queued) }) }
	got := make(chan error, 1)
	go func() {
		_, err := f.root.Acquire(ctx, name, o)
		got <- err
	}()
	<-queued
	return got
}

func (f *engFixture) lockPath(name string) string {
	return filepath.Join(f.dir, "locks", name+".json")
}

func (f *engFixture) freezePath(name string) string {
	return filepath.Join(f.dir, "freezes", name+".json")
}

// readRecord decodes the lock file as stored.
func (f *engFixture) readRecord(name string) *lockfile.Lock {
	f.t.Helper()
	data, err := os.ReadFile(f.lockPath(name))
	if err != nil {
		f.t.Fatal(err)
	}
	l, err := lockfile.DecodeLock(data)
	if err != nil {
		f.t.Fatalf("stored record of %q does not decode: %v\n%s", name, err, data)
	}
	return l
}

func (f *engFixture) writeRaw(path, data string) {
	f.t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *engFixture) exists(path string) bool {
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		f.t.Fatal(err)
	}
	return err == nil
}

// engHeldBy checks that err is (or wraps) a *HeldError and returns the lock
// in the way.
func engHeldBy(t *testing.T, err error) *Lock {
	t.Helper()
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("error = %v (%T), want *HeldError", err, err)
	}
	return held.Lock
}

// engFailingStore wraps a store so that every write fails after the
// callback has decided on it: the change is never stored.
type engFailingStore struct {
	store.Store
	err error
}

func (s *engFailingStore) Update(ctx context.Context, k store.Key, fn func([]byte, uint64) (store.Change, error)) error {
	return s.Store.Update(ctx, k, func(cur []byte, seq uint64) (store.Change, error) {
		c, err := fn(cur, seq)
		if err != nil || c.Op == store.Keep {
			return c, err
		}
		return store.Change{}, s.err
	})
}

// A version-99 record: newer lokt may change any field's type.
const engFutureLock = `{"version":99,"name":"NAME","lock_id":{"v":2},"pid":"one","acquired_at":17}` + "\n"
