package lokt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/store"
)

// RenewOptions extends a held lock.
type RenewOptions struct {
	Identity
	Holder Holder
	// TTL is the new time to live from now; 0 keeps the lock without expiry.
	TTL time.Duration
	// Child, when its PID is not 0, records a co-holder: the lock then only
	// goes stale by liveness once both the holder and the child are gone.
	Child Holder
	// Group, when not 0, records the co-holder's process group: the lock
	// stays live while any process of it does.
	Group int

	evidence store.Kept // set by Held: see AcquireOptions.evidence
}

// Renew extends the lock name if it still carries lockID. If the record is
// gone or carries another lock_id (force-broken, or broken as stale and
// retaken), it returns an error wrapping ErrLost and changes nothing.
func (r *Root) Renew(ctx context.Context, name, lockID string, o RenewOptions) (*Lock, error) {
	if err := lockfile.ValidateName(name); err != nil {
		return nil, err
	}
	if o.TTL < 0 {
		return nil, fmt.Errorf("TTL must not be negative (got %s)", o.TTL)
	}
	var result *Lock
	var events []Event
	err := r.store.Update(ctx, store.Key{NS: store.Locks, Name: name}, func(cur []byte, _ uint64) (store.Change, error) {
		now := r.now()
		events = events[:0]
		v, old, err := r.ownEntry(name, cur, lockID)
		if err != nil {
			return store.Change{}, err
		}
		if old.PID == 0 && o.TTL == 0 {
			// Without a holder process only the TTL can end the lock.
			return store.Change{}, errors.New("a lock with no holder process (--pid 0) needs a TTL; renew it with one")
		}
		old.RenewedAt = lockfile.TimePtr(now)
		setTTL(old, o.TTL, now)
		reason := ""
		if o.Child.PID != 0 {
			old.ChildPID, old.ChildStart = o.Child.PID, o.Child.Start
			reason = fmt.Sprintf("command pid %d recorded as co-holder", o.Child.PID)
		}
		switch {
		case o.Group != 0 && reason != "":
			old.PGID = o.Group
			reason += fmt.Sprintf(", with its process group %d", o.Group)
		case o.Group != 0:
			// The command exited before its start could be read; the
			// group it led may still have members.
			old.PGID = o.Group
			reason = fmt.Sprintf("command's process group %d recorded", o.Group)
		}
		result = withMode(fromRecord(old), v)
		events = append(events, Event{Time: now, Type: EventRenew, Name: name, Actor: Actor{Identity: o.Identity, Holder: o.Holder}, Lock: result, Reason: reason})
		return putViewKept(v, 0, o.evidence, lockID)
	})
	if err == nil { // a failed write changed nothing to report
		r.emitAll(events)
	}
	if err != nil {
		return nil, r.wrapStoreErr(name, err)
	}
	return result, nil
}

// decodeOwn checks that cur is the caller's acquisition (lockID).
func (r *Root) decodeOwn(name string, cur []byte, lockID string) (*lockfile.Lock, error) {
	if cur == nil {
		return nil, fmt.Errorf("%w: %q no longer exists (released or broken by someone else)", ErrLost, name)
	}
	old, err := r.decodeLock(name, cur)
	var corrupt *CorruptError
	if errors.As(err, &corrupt) {
		// Our record was damaged: the next acquirer will replace it, so the
		// lock is as good as gone.
		return nil, fmt.Errorf("%w: %w", ErrLost, err)
	}
	if err != nil {
		return nil, err
	}
	if old.LockID != lockID {
		return nil, fmt.Errorf("%w: %q now belongs to %s@%s pid %d (lock_id %s)", ErrLost, name, old.Owner, old.Host, old.PID, old.LockID)
	}
	return old, nil
}

// ReleaseMode chooses how Release treats a lock that is not the caller's.
type ReleaseMode int

// Release modes.
const (
	// ReleaseOwn releases only the caller's own lock: the lock's owner label
	// must match, and a holder process that is still running must be the
	// caller (see ReleaseOptions.IsCaller). With LockID set, holding that
	// lock_id is proof enough (what guard uses).
	ReleaseOwn ReleaseMode = iota
	// BreakStale removes the lock only if it is stale (expired, holder
	// dead, or corrupt); a live lock gives a *HeldError.
	BreakStale
	// Force removes any lock, whoever holds it. Break-glass: the event is a
	// force-break naming the caller as actor and the lock's holder.
	Force
)

// ReleaseOptions says who releases and how.
type ReleaseOptions struct {
	// Identity and Holder are the caller: the audit event's actor.
	Identity
	Holder Holder
	Mode   ReleaseMode
	// LockID, if set, makes the release conditional on the record still
	// being this acquisition: any other gives an error wrapping ErrLost.
	// With ReleaseOwn it also stands in for the owner and holder checks.
	LockID string
	// AsOwner, if set, is the owner label ReleaseOwn accepts instead of
	// Identity.Owner (releasing another label's locks on purpose). The
	// event still names Identity as the actor.
	AsOwner string
	// IsCaller reports whether a running holder process counts as the
	// caller, typically because it is the caller's ancestor (the shell that
	// ran lokt lock, the guard running this command). Holder itself always
	// counts. It runs inside the compare-and-swap, so it must be quick and
	// must not use the Root.
	IsCaller func(Holder) bool

	// unless, with LockID, leaves the record in place when it answers true
	// (Held.Release: the holder's process tree still runs).
	unless func(*lockfile.Lock) bool
}

// LiveHolderError reports a ReleaseOwn refused because the lock's holder is
// a process that is still running (or that lokt cannot check: on another
// host, in another PID namespace) and is not the caller. Releasing it needs Force. A lock with no
// holder process (PID 0) never gives this error: it has no one to protect.
type LiveHolderError struct {
	Lock *Lock
	// Foreign, when not "", says why lokt cannot tell whether the holder
	// runs ("on another host", "in another PID namespace").
	Foreign string
	Leased  bool // the record ends with its holder's lease
	Now     time.Time
}

func (e *LiveHolderError) Error() string {
	why := "that holder is still running and is not the caller"
	if e.Foreign != "" {
		why = "that holder is " + e.Foreign + ", where lokt cannot check whether it still runs"
	}
	return fmt.Sprintf("lock %q is held by %s; %s", e.Lock.Name, describeHolder(e.Lock, e.Now, e.Foreign, e.Leased), why)
}

// callerHolds reports whether the caller may release old as its own holder:
// the lock has no holder process, or the holder (or guard's command, the
// co-holder) is the caller.
func (o *ReleaseOptions) callerHolds(old *lockfile.Lock) bool {
	if old.PID == 0 {
		return true
	}
	if sameHolder(old, o.Holder) {
		return true
	}
	// guard's command runs in guard's PID namespace.
	child := Holder{Host: old.Host, PID: old.ChildPID, Start: old.ChildStart, NS: old.PIDNS}
	if child.PID != 0 && child == o.Holder {
		return true
	}
	if o.IsCaller == nil {
		return false
	}
	return o.IsCaller(Holder{Host: old.Host, PID: old.PID, Start: old.PIDStart, NS: old.PIDNS}) ||
		(child.PID != 0 && o.IsCaller(child))
}

// Release removes the lock name. It returns the removed lock, or an error:
// wrapping ErrNotFound if there is none, *NotOwnerError if another owner has
// it (ReleaseOwn), *LiveHolderError if its holder runs and is not the caller
// (ReleaseOwn), *HeldError for BreakStale on a live lock, ErrLost when
// LockID no longer matches. A newer-version record is never removed.
func (r *Root) Release(ctx context.Context, name string, o ReleaseOptions) (*Lock, error) {
	if err := lockfile.ValidateName(name); err != nil {
		return nil, err
	}
	var removed *Lock
	var events []Event
	var gone []*Lock
	actor := Actor{Identity: o.Identity, Holder: o.Holder}
	owner := o.Owner
	if o.AsOwner != "" {
		owner = o.AsOwner
	}
	err := r.store.Update(ctx, store.Key{NS: store.Locks, Name: name}, func(cur []byte, _ uint64) (store.Change, error) {
		now := r.now()
		events, removed, gone = events[:0], nil, nil
		if cur == nil {
			return store.Change{}, fmt.Errorf("lock %q: %w", name, ErrNotFound)
		}
		if o.LockID != "" {
			// Precondition: still the acquisition the caller means.
			v, old, err := r.ownEntry(name, cur, o.LockID)
			if err != nil {
				return store.Change{}, err
			}
			if o.unless != nil && o.unless(old) {
				return store.Change{}, nil
			}
			if o.Mode == ReleaseOwn || isMulti(cur) {
				// One holder's entry goes; in a version 2 record the
				// others stay.
				ev := Event{Time: now, Type: EventRelease, Name: name, Actor: actor, Lock: withMode(fromRecord(old), v)}
				switch o.Mode {
				case BreakStale:
					state := r.judge(ctx, old, now)
					if !state.Stale() {
						return store.Change{}, &HeldError{Lock: ev.Lock, Now: now, Remote: r.foreign(old) != "", Foreign: r.foreign(old), Leased: r.leased(old)}
					}
					ev.Type, ev.Reason = EventStaleBreak, string(state)
				case Force:
					ev.Type, ev.Reason = EventForceBreak, string(r.judge(ctx, old, now))
				}
				removed = ev.Lock
				events = append(events, ev)
				dropHolder(v, old)
				ch, err := putView(v, 0)
				if ch.Op == store.Delete {
					ch.Durable = mustSurviveCrash(old)
				}
				return ch, err
			}
		}
		if isMulti(cur) {
			return r.releaseMulti(ctx, name, o, owner, cur, now, actor, &removed, &events, &gone)
		}
		old, err := r.decodeLock(name, cur)
		var corrupt *CorruptError
		switch {
		case errors.As(err, &corrupt) && o.Mode != ReleaseOwn:
			events = append(events, Event{Time: now, Type: EventCorruptBreak, Name: name, Actor: actor, Reason: corrupt.Err.Error()})
			return store.Change{Op: store.Delete}, nil
		case errors.As(err, &corrupt):
			return store.Change{}, fmt.Errorf("%w; remove it with: lokt unlock %s --break-stale", err, name)
		case err != nil:
			return store.Change{}, err
		}
		removed = fromRecord(old)
		ev := Event{Time: now, Name: name, Actor: actor, Lock: removed}
		switch o.Mode {
		case ReleaseOwn:
			state := r.judge(ctx, old, now)
			if old.Owner != owner {
				return store.Change{}, &NotOwnerError{Lock: removed, Caller: owner, State: state, Now: now}
			}
			// Precondition: a running holder is the caller. A dead or
			// expired holder has nothing left to protect.
			if state == StateLive && !o.callerHolds(old) {
				return store.Change{}, &LiveHolderError{Lock: removed, Foreign: r.foreign(old), Leased: r.leased(old), Now: now}
			}
			ev.Type = EventRelease
		case BreakStale:
			state := r.judge(ctx, old, now)
			if !state.Stale() {
				return store.Change{}, &HeldError{Lock: removed, Now: now, Remote: r.foreign(old) != "", Foreign: r.foreign(old), Leased: r.leased(old)}
			}
			ev.Type, ev.Reason = EventStaleBreak, string(state)
		case Force:
			ev.Type, ev.Reason = EventForceBreak, string(r.judge(ctx, old, now))
		}
		events = append(events, ev)
		return remove(old), nil
	})
	if err == nil { // a failed write changed nothing to report
		r.emitAll(events)
	}
	if err != nil {
		return nil, r.wrapStoreErr(name, err)
	}
	if gone != nil {
		for _, g := range gone {
			r.forget(ctx, g)
		}
		return removed, nil
	}
	r.forget(ctx, removed)
	return removed, nil
}

// Prune removes every stale lock (expired, dead holder, corrupt) and every
// expired freeze, each in its own compare-and-swap, and returns the names
// of the locks it removed.
func (r *Root) Prune(ctx context.Context, actor Actor) ([]string, error) {
	names, err := r.store.List(ctx, store.Locks)
	if err != nil {
		return nil, err
	}
	var pruned []string
	var errs []error
	for _, name := range names {
		if lockfile.ValidateName(name) != nil {
			continue
		}
		var events []Event
		err := r.store.Update(ctx, store.Key{NS: store.Locks, Name: name}, func(cur []byte, _ uint64) (store.Change, error) {
			events = events[:0]
			if cur == nil {
				return store.Change{}, nil
			}
			if isMulti(cur) {
				return r.pruneMulti(ctx, name, cur, actor, &events)
			}
			now := r.now()
			old, err := r.decodeLock(name, cur)
			var corrupt *CorruptError
			if errors.As(err, &corrupt) {
				events = append(events, Event{Time: now, Type: EventCorruptBreak, Name: name, Actor: actor, Reason: corrupt.Err.Error()})
				return store.Change{Op: store.Delete}, nil
			}
			if err != nil {
				return store.Change{}, err
			}
			state := r.judge(ctx, old, now)
			if !state.Stale() {
				return store.Change{}, nil
			}
			events = append(events, Event{Time: now, Type: EventAutoPrune, Name: name, Actor: actor, Lock: fromRecord(old), Reason: string(state)})
			return store.Change{Op: store.Delete}, nil
		})
		if err != nil {
			errs = append(errs, r.wrapStoreErr(name, err))
		} else if len(events) > 0 {
			for _, e := range events {
				if e.Lock != nil {
					r.forget(ctx, e.Lock)
				}
			}
			r.emitAll(events)
			pruned = append(pruned, name)
		}
	}
	if err := r.pruneFreezes(ctx, actor); err != nil {
		errs = append(errs, err)
	}
	if s, ok := r.store.(store.Sweeper); ok {
		if _, err := s.Sweep(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return pruned, errors.Join(errs...)
}

// decodeLock turns codec errors into the engine's error types.
func (r *Root) decodeLock(name string, data []byte) (*lockfile.Lock, error) {
	l, err := lockfile.DecodeLock(data)
	if err = r.recordErr(store.Locks, name, err, func() string { return l.Name }); err != nil {
		return nil, err
	}
	return l, nil
}

// recordErr turns a codec's verdict on the record of name in ns into the
// engine's error types: written by a newer protocol, damaged, or filed
// under another name than it records (recorded, asked only when decoding
// succeeded).
func (r *Root) recordErr(ns store.Namespace, name string, err error, recorded func() string) error {
	var future *lockfile.FutureVersionError
	switch {
	case errors.As(err, &future):
		return &UnsupportedVersionError{Path: r.pathOf(ns, name), Version: future.Version}
	case err != nil:
		return &CorruptError{Name: name, Path: r.pathOf(ns, name), Err: err}
	case recorded() != name:
		return &CorruptError{Name: name, Path: r.pathOf(ns, name), Err: fmt.Errorf("%w: records name %q", lockfile.ErrCorrupt, recorded())}
	}
	return nil
}

func (r *Root) pathOf(ns store.Namespace, name string) string {
	return filepath.Join(r.store.Location(), string(ns), name+".json")
}

// wrapStoreErr adds advice to storage errors a person must act on.
func (r *Root) wrapStoreErr(name string, err error) error {
	if errors.Is(err, store.ErrUnsafe) {
		return fmt.Errorf("lock %q: %w; lokt will not read, replace or delete it: inspect it and remove it by hand if it is not needed", name, err)
	}
	return err
}
