package lokt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/store"
)

// AcquireOptions says who acquires and for how long.
type AcquireOptions struct {
	Identity
	// Holder is the process the lock belongs to (see Self, ProcessHolder).
	// A zero PID means no process: TTL is then required.
	Holder Holder
	// TTL bounds the lock's life unless renewed; 0 means no expiry.
	TTL time.Duration
	// Wait makes Acquire block until the lock can be taken or ctx ends.
	Wait bool
	// OnBlocked, if set, is called (from the acquiring goroutine) each time
	// a wait finds the lock still blocked, with the *HeldError or
	// *FrozenError in the way. For progress messages.
	OnBlocked func(blocker error)
	Meta      map[string]string
	// Shared takes the lock shared: any number of shared holders at once,
	// none while an exclusive holder has it.
	Shared bool
	// Slots, when not 0, makes the name a counting semaphore: at most Slots
	// holders at once (1..MaxSlots). Every holder must give the same count.
	Slots int

	// waitID names the caller's place in a version 2 line while it waits.
	waitID string

	// Set by Hold: the acquisition's lock_id, chosen before the record is
	// written because the store's evidence is named after it.
	lockID string
	kept   bool
	// evidence is the store's Kept behind kept: every write of the record
	// names it, so a store with leases keeps the record on the holder's
	// lease (store.Change.Kept).
	evidence store.Kept
}

func (o *AcquireOptions) validate(name string) error {
	if err := lockfile.ValidateName(name); err != nil {
		return err
	}
	if o.TTL < 0 {
		return fmt.Errorf("TTL must not be negative (got %s)", o.TTL)
	}
	if o.Holder.PID == 0 && o.TTL == 0 {
		return errors.New("a lock with no holder process (--pid 0) needs a TTL, or it could never go stale; add e.g. --ttl 30m")
	}
	if o.Holder.PID < 0 {
		return fmt.Errorf("pid must not be negative (got %d)", o.Holder.PID)
	}
	return validateSlots(o)
}

// Acquire takes the lock name for o.Holder, or refreshes it (new expiry,
// same lock_id) if that holder already has it. A stale lock is broken and
// taken in the same step. If another holder has it, Acquire returns a
// *HeldError; if the name is frozen, a *FrozenError. With o.Wait it blocks
// until it succeeds or ctx ends; a deadline then gives a *TimeoutError.
//
// Waiting: waiters line up on a per-name kernel lock (when the store is a
// store.Queue). Only the first in line works for the lock: it watches the
// record and retries when it is removed, the one change that can free it,
// and since a holder can also die without touching the record, it rechecks
// on a timer too (backoff from minPoll to maxPoll, or sooner if the lock
// expires sooner). The others sleep in the kernel until the head acquires
// and leaves the line, so a release wakes one waiter, not all of them, and
// the line is roughly first come, first served. A waiter not at the head
// still retries every lineRecheck on its own, so a head that is stopped
// (Ctrl-Z) or slow cannot hold the others back for longer than that.
func (r *Root) Acquire(ctx context.Context, name string, o AcquireOptions) (*Lock, error) {
	if err := o.validate(name); err != nil {
		return nil, err
	}
	if _, ok := r.store.(store.MultiHolder); o.multi() && !ok {
		return nil, fmt.Errorf("slots and shared holders are not supported on the lock store at %s (it keeps no multi-holder records); take %q exclusively", r.store.Location(), name)
	}
	if o.Holder.Host == "" {
		// A zero Holder means no process; the record still needs a host.
		o.Holder.Host = r.host
	}
	start := r.now()
	// The first attempt is not cut short by a waiting deadline: that bounds
	// how long to wait for the lock, and a store across a network needs its
	// round trips to say whether there is anything to wait for (its own
	// request timeout still bounds them).
	first := ctx
	if o.Wait {
		o.waitID = newLockID()
		first = context.WithoutCancel(ctx)
	}
	l, _, err := r.tryAcquire(first, name, &o, true)
	if !o.Wait || !isBlocked(err) {
		return l, err
	}
	if o.OnBlocked != nil {
		o.OnBlocked(err)
	}
	timedOut := func(blocker error) error {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &TimeoutError{Waited: r.now().Sub(start), Blocker: blocker}
		}
		return ctx.Err()
	}
	if o.multi() || multiBlock(err) {
		return r.waitMulti(ctx, name, &o, timedOut)
	}
	withdraw := r.announce(name, &o, start)
	l, err = r.waitExclusive(ctx, name, &o, err, timedOut)
	withdraw()
	if multiBlock(err) {
		// The name went shared (or slots) meanwhile: its line is in the
		// record now.
		return r.waitMulti(ctx, name, &o, timedOut)
	}
	return l, err
}

// waitExclusive waits for a name held exclusively (a version 1 record),
// behind the store's line when it has one.
func (r *Root) waitExclusive(ctx context.Context, name string, o *AcquireOptions, blocker error, timedOut func(error) error) (*Lock, error) {
	if q, ok := r.store.(store.Queue); ok {
		if first, leave, qerr := q.Line(store.Key{NS: store.Locks, Name: name}); qerr == nil {
			l, done, err := r.waitForTurn(ctx, name, o, first, blocker)
			switch {
			case multiBlock(err):
				leave()
				return nil, err
			case done:
				leave()
				if err != nil && ctx.Err() != nil && isBlocked(err) {
					return nil, timedOut(err)
				}
				return l, err
			}
			// The head stays in line while it works for the lock: the
			// waiters behind it sleep until it has the lock (or gives up).
			defer leave()
			blocker = err
		}
		// Without a line (e.g. a read-only guard directory) every waiter
		// works for the lock as the head does.
	}
	return r.waitAtHead(ctx, name, o, blocker, timedOut)
}

// waitForTurn waits in line, retrying on its own every lineRecheck. It
// returns done=false once the caller is first in line, still blocked.
func (r *Root) waitForTurn(ctx context.Context, name string, o *AcquireOptions, first <-chan struct{}, blocker error) (l *Lock, done bool, err error) {
	for {
		timer := time.NewTimer(jitter(lineRecheck))
		select {
		case <-first:
			timer.Stop()
			return nil, false, blocker
		case <-ctx.Done():
			timer.Stop()
			return nil, true, blocker
		case <-timer.C:
		}
		l, _, err := r.tryAcquire(ctx, name, o, false)
		if err != nil && !isBlocked(err) && ctx.Err() != nil {
			// The deadline struck during the attempt (a store that goes
			// over the network): still a timeout behind the last blocker.
			return nil, true, blocker
		}
		if !isBlocked(err) || multiBlock(err) {
			return l, true, err
		}
		blocker = err
		if o.OnBlocked != nil {
			o.OnBlocked(err)
		}
	}
}

// waitAtHead is the first waiter's loop: watch for removal, poll for
// holders that die or expire.
func (r *Root) waitAtHead(ctx context.Context, name string, o *AcquireOptions, last error, timedOut func(error) error) (*Lock, error) {
	// Subscribe before trying again, so a release between that attempt and
	// the wait cannot be missed. (A watcher costs a kernel grace period to
	// tear down, which is why the uncontended path never subscribes.)
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	changed, werr := r.store.Watch(watchCtx, store.Key{NS: store.Locks, Name: name}, store.Key{NS: store.Freezes, Name: name})
	if werr != nil {
		changed = nil // no events (e.g. out of inotify watches): polling alone still works
	}
	delay := minPoll
	for {
		l, until, blocker := r.tryAcquire(ctx, name, o, false)
		if blocker != nil && !isBlocked(blocker) && ctx.Err() != nil && last != nil {
			return nil, timedOut(last) // the deadline struck during the attempt
		}
		if !isBlocked(blocker) || multiBlock(blocker) {
			return l, blocker
		}
		last = blocker
		if o.OnBlocked != nil {
			o.OnBlocked(blocker)
		}
		if !r.pause(ctx, &delay, until, changed) {
			return nil, timedOut(blocker)
		}
	}
}

// pause is one wait of a waiter at the head of the line: until the store
// reports a change (then the next wait is short again), the blocker ends by
// itself (until), or the backoff delay passes (then it doubles, up to
// maxPoll). It reports false when ctx ended first.
func (r *Root) pause(ctx context.Context, delay *time.Duration, until time.Time, changed <-chan struct{}) bool {
	sleep := jitter(*delay)
	if !until.IsZero() {
		if d := until.Sub(r.now()); d < sleep {
			sleep = max(d, time.Millisecond)
		}
	}
	timer := time.NewTimer(sleep)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-changed:
		*delay = minPoll
	case <-timer.C:
		*delay = min(*delay*2, maxPoll)
	}
	return true
}

const (
	minPoll = 10 * time.Millisecond
	// maxPoll bounds how long a waiter takes to notice a holder that died
	// without releasing.
	maxPoll = 500 * time.Millisecond
	// lineRecheck is how often a waiter behind the head retries by itself.
	lineRecheck = time.Second
)

// jitter spreads waiters' rechecks over [d/2, d) so they do not move in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1) //nolint:gosec // scheduling jitter, not security
}

func isBlocked(err error) bool {
	var held *HeldError
	var frozen *FrozenError
	return errors.As(err, &held) || errors.As(err, &frozen)
}

// tryAcquire makes one attempt. On a block it also returns when the blocker
// ends by itself (lock or freeze expiry), zero if never.
func (r *Root) tryAcquire(ctx context.Context, name string, o *AcquireOptions, reportDeny bool) (*Lock, time.Time, error) {
	actor := Actor{Identity: o.Identity, Holder: o.Holder}
	var (
		result *Lock
		events []Event
		until  time.Time
		broken *lockfile.Lock // the stale record this acquisition replaced
		ma     multiAttempt
	)
	err := r.store.Update(ctx, store.Key{NS: store.Locks, Name: name}, func(cur []byte, seq uint64) (store.Change, error) {
		now := r.now()
		events, broken = events[:0], nil
		// The freeze is read inside the name's critical section, which a
		// freeze is written under too: once Freeze has returned, no
		// acquisition can still slip past it. It blocks new acquisitions
		// but not a refresh by the current holder, who is not interrupted.
		frozen, err := r.activeFreeze(ctx, name)
		if err != nil {
			return store.Change{}, err
		}
		if o.multi() || (cur != nil && isMulti(cur)) {
			ma = multiAttempt{}
			var v *lockfile.Multi
			if cur != nil {
				var corrupt *CorruptError
				v, err = r.decodeView(name, cur)
				switch {
				case errors.As(err, &corrupt) && frozen == nil:
					v = nil
					ma.events = append(ma.events, Event{Time: now, Type: EventCorruptBreak, Name: name, Actor: actor, Reason: corrupt.Err.Error()})
				case errors.As(err, &corrupt):
					v = nil
				case err != nil:
					return store.Change{}, err
				}
			}
			return r.acquireMulti(ctx, name, o, v, frozen, seq, now, reportDeny, &ma)
		}
		var old *lockfile.Lock
		var oldState State
		var corrupt *CorruptError
		if cur != nil {
			var err error
			old, err = r.decodeLock(name, cur)
			switch {
			case errors.As(err, &corrupt):
				oldState = StateCorrupt
			case err != nil:
				return store.Change{}, err
			case sameHolder(old, o.Holder):
				return r.refresh(old, o, now, &result, &events)
			default:
				oldState = r.judge(ctx, old, now)
			}
		}
		if frozen != nil {
			until = frozen.ExpiresAt
			if reportDeny {
				events = append(events, Event{Time: now, Type: EventFreezeDeny, Name: name, Actor: actor, Freeze: frozen})
			}
			return store.Change{}, &FrozenError{Freeze: frozen, Now: now}
		}
		var prevToken uint64
		switch {
		case cur == nil:
		case oldState == StateCorrupt:
			events = append(events, Event{Time: now, Type: EventCorruptBreak, Name: name, Actor: actor, Reason: corrupt.Err.Error()})
		case !oldState.Stale():
			if old.ExpiresAt != nil {
				until = old.ExpiresAt.Time
			}
			held := fromRecord(old)
			if reportDeny {
				events = append(events, Event{Time: now, Type: EventDeny, Name: name, Actor: actor, Lock: held})
			}
			return store.Change{}, &HeldError{Lock: held, Now: now, Remote: r.foreign(old) != "", Foreign: r.foreign(old), Leased: r.leased(old)}
		default:
			prevToken = old.Token
			broken = old
			events = append(events, Event{Time: now, Type: EventStaleBreak, Name: name, Actor: actor, Lock: fromRecord(old), Reason: string(oldState)})
		}
		id := o.lockID
		if id == "" {
			id = newLockID()
		}
		rec := &lockfile.Lock{
			Version: lockfile.Version, Name: name, LockID: id,
			Owner: o.Owner, AgentID: o.AgentID,
			Host: o.Holder.Host, PID: o.Holder.PID, PIDStart: o.Holder.Start, PIDNS: o.Holder.NS,
			Kept:       o.kept,
			AcquiredAt: lockfile.NewTime(now),
			Token:      max(seq, prevToken) + 1,
			Meta:       o.Meta,
		}
		setTTL(rec, o.TTL, now)
		result = fromRecord(rec)
		events = append(events, Event{Time: now, Type: EventAcquire, Name: name, Actor: actor, Lock: result})
		ch, err := put(rec, rec.Token)
		ch.Kept = o.evidence
		return ch, err
	})
	if ma.events != nil || ma.result != nil || ma.blocked != nil {
		events, result, until = ma.events, ma.result, ma.until
		if err == nil {
			for _, g := range ma.gone {
				r.forget(ctx, fromRecord(g))
			}
			if ma.blocked != nil {
				err = ma.blocked
			}
		}
	}
	if err == nil || isBlocked(err) { // a deny is reported; a failed write is not a change
		r.emitAll(events)
	}
	if err != nil {
		return nil, until, r.wrapStoreErr(name, err)
	}
	if broken != nil {
		r.forget(ctx, fromRecord(broken))
	}
	return result, time.Time{}, nil
}

// forget cleans up the store evidence of a record that is gone for good.
// Best effort: leftover evidence only costs a file, never a wrong verdict,
// since it is named after a lock_id no record carries any more.
func (r *Root) forget(ctx context.Context, gone *Lock) {
	if gone == nil || !gone.Kept {
		return
	}
	if k, ok := r.store.(store.Keeper); ok {
		_ = k.Forget(ctx, store.Key{NS: store.Locks, Name: gone.Name}, gone.LockID)
	}
}

func (r *Root) refresh(old *lockfile.Lock, o *AcquireOptions, now time.Time, result **Lock, events *[]Event) (store.Change, error) {
	old.Owner, old.AgentID = o.Owner, o.AgentID
	old.RenewedAt = lockfile.TimePtr(now)
	setTTL(old, o.TTL, now)
	if o.Meta != nil {
		old.Meta = o.Meta
	}
	*result = fromRecord(old)
	*events = append(*events, Event{Time: now, Type: EventRefresh, Name: old.Name, Actor: Actor{Identity: o.Identity, Holder: o.Holder}, Lock: *result})
	ch, err := put(old, 0)
	ch.Kept = o.evidence
	return ch, err
}

func setTTL(rec *lockfile.Lock, ttl time.Duration, now time.Time) {
	rec.TTLSec = 0
	rec.ExpiresAt = nil
	if ttl > 0 {
		rec.TTLSec = int64((ttl + time.Second - 1) / time.Second)
		rec.ExpiresAt = lockfile.TimePtr(now.Add(ttl))
	}
}

func put(rec any, seq uint64) (store.Change, error) {
	data, err := lockfile.Encode(rec)
	if err != nil {
		return store.Change{}, err
	}
	return store.Change{Op: store.Put, Data: data, Seq: seq, Durable: mustSurviveCrash(rec), TTL: recordTTL(rec)}, nil
}

// recordTTL is how long a record means anything unless renewed: a store
// with leases lets it vanish by itself afterwards (the engine still judges
// expiry from the record, which always comes first).
func recordTTL(rec any) time.Duration {
	switch r := rec.(type) {
	case *lockfile.Lock:
		return time.Duration(r.TTLSec) * time.Second
	case *lockfile.Freeze:
		return time.Duration(r.TTLSec) * time.Second
	}
	return 0
}

// remove deletes a lock record, durably when its existence mattered beyond
// a crash of this host.
func remove(old *lockfile.Lock) store.Change {
	return store.Change{Op: store.Delete, Durable: mustSurviveCrash(old)}
}

// mustSurviveCrash says whether a record is worth an fsync. A lock held by
// a process on this host is not: a crash of the host ends the holder, which
// makes the lock stale whether or not the write survived. A lock tied to no
// process, and a freeze, stay meaningful after a reboot.
func mustSurviveCrash(rec any) bool {
	if l, ok := rec.(*lockfile.Lock); ok {
		return l.PID == 0
	}
	return true
}
