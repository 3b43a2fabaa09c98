package lokt

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/proc"
)

const engContenders = 32

type engOutcome struct {
	lock *Lock
	err  error
}

// engRace has every contender call Acquire on name at once (each with its
// own Root, as separate processes would) and returns what each got.
func engRace(f *engFixture, roots []*Root, name string, ttl time.Duration) []engOutcome {
	out := make([]engOutcome, len(roots))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range roots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			l, err := r.Acquire(context.Background(), name, engAcqOpts("same-owner", f.holder(1000+i), ttl))
			out[i] = engOutcome{l, err}
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// engOneWinner checks that exactly one contender won and every other one was
// told who holds the lock.
func engOneWinner(t *testing.T, f *engFixture, name string, out []engOutcome) *Lock {
	t.Helper()
	var winner *Lock
	for _, o := range out {
		if o.err != nil {
			engHeldBy(t, o.err)
			continue
		}
		if winner != nil {
			t.Fatalf("%s: two winners: pid %d and pid %d", name, winner.PID, o.lock.PID)
		}
		winner = o.lock
	}
	if winner == nil {
		t.Fatalf("%s: nobody won", name)
	}
	for _, o := range out {
		if o.err != nil {
			if by := engHeldBy(t, o.err); by.LockID != winner.LockID {
				t.Fatalf("%s: a loser was denied by %s, not the winner %s", name, by.LockID, winner.LockID)
			}
		}
	}
	if rec := f.readRecord(name); rec.LockID != winner.LockID || rec.PID != winner.PID {
		t.Fatalf("%s: stored lock %s (pid %d) is not the winner's %s (pid %d)", name, rec.LockID, rec.PID, winner.LockID, winner.PID)
	}
	return winner
}

func TestContentionExactlyOneWinner(t *testing.T) {
	f := newEngFixture(t)
	roots := make([]*Root, engContenders)
	for i := range roots {
		roots[i] = f.open()
	}
	const rounds = 50
	for round := 0; round < rounds; round++ {
		name := fmt.Sprintf("contended-%d", round)
		w := engOneWinner(t, f, name, engRace(f, roots, name, 0))
		if w.Token != 1 {
			t.Fatalf("%s: token %d, want 1", name, w.Token)
		}
	}
	ev := f.events.Take()
	if a, d := engCount(ev, EventAcquire), engCount(ev, EventDeny); a != rounds || d != rounds*(engContenders-1) || len(ev) != a+d {
		t.Errorf("events: %d acquire, %d deny of %d; want %d and %d", a, d, len(ev), rounds, rounds*(engContenders-1))
	}
}

// N contenders find the same stale lock at once: exactly one breaks it.
func TestContentionStaleBreakExactlyOnce(t *testing.T) {
	f := newEngFixture(t)
	roots := make([]*Root, engContenders)
	for i := range roots {
		roots[i] = f.open()
	}
	const rounds = 10
	for round := 0; round < rounds; round++ {
		name := fmt.Sprintf("stale-%d", round)
		old := f.mustAcquire(name, engAcqOpts("same-owner", f.holder(1), time.Minute))
		reason := "expired"
		if round%2 == 0 {
			f.clock.Advance(time.Minute)
		} else {
			f.live.Set(1, proc.Dead)
			reason = "dead"
		}
		f.events.Take()

		w := engOneWinner(t, f, name, engRace(f, roots, name, time.Hour))
		if w.Token <= old.Token {
			t.Fatalf("%s: token %d after breaking token %d", name, w.Token, old.Token)
		}
		ev := f.events.Take()
		if n := engCount(ev, EventStaleBreak); n != 1 {
			t.Fatalf("%s: %d stale-break events, want exactly 1", name, n)
		}
		for _, e := range ev {
			if e.Type == EventStaleBreak && (e.Reason != reason || e.Lock.LockID != old.LockID || e.Actor.PID != w.PID) {
				t.Fatalf("%s: stale-break %+v, want the winner breaking %s (%s)", name, e, old.LockID, reason)
			}
		}
		if engCount(ev, EventAcquire) != 1 || engCount(ev, EventDeny) != engContenders-1 {
			t.Fatalf("%s: events %v", name, engTypes(ev))
		}
		f.live.Set(1, proc.Alive)
	}
}
