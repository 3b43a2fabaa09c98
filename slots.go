package lokt

// Slots and shared holders.
//
// A name with more than one holder, or with processes waiting in line behind
// shared or slot holders, is stored as one record of protocol version 2
// (lockfile.Multi): the mode (shared, slots or exclusive), the slot count,
// every holder as a whole version-1-shaped entry, and the waiters in arrival
// order. Every change is still one compare-and-swap on that record, so the
// line and the holders change together. The line is fair by construction:
// an acquirer may take the name only if every waiter ahead of it could take
// it too (a run of compatible waiters at the head goes in together), so a
// newcomer never passes a waiting exclusive holder and a stream of shared
// holders cannot starve it. Waiters watch the record for any change (a
// holder leaving rewrites it rather than removing it) and recheck on a
// timer for holders that die without writing. Each holder entry is judged
// by judge, exactly as a single holder is; a waiter is dropped as soon as
// its process is gone, or, when lokt cannot check it, when its entry
// expires without being renewed. When the last holder leaves and nobody
// waits the record is removed; a single exclusive holder with nobody
// waiting is written back as version 1, so ordinary exclusive use of the
// name stays readable by every lokt.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/store"
)

// MaxSlots is the largest slot count a name may have.
const MaxSlots = lockfile.MaxSlots

// MultiVersion is the protocol version of records with several holders or
// a line of their own (Status.Version).
const MultiVersion = lockfile.MultiVersion

// The modes a name can be held in.
const (
	ModeExclusive = lockfile.ModeExclusive
	ModeShared    = lockfile.ModeShared
	ModeSlots     = lockfile.ModeSlots
)

// waiterTTL is how long a waiter's place lasts without renewal. Waiters on
// this host are dropped as soon as their process is gone, whatever the
// TTL; it only matters for waiters lokt cannot check (another host or PID
// namespace).
const waiterTTL = 30 * time.Second

// SlotsMismatchError reports an acquirer whose slot count (or mode)
// disagrees with the holders and waiters of the name.
type SlotsMismatchError struct {
	Name string
	// Slots is the count the name is in use with; Mode its mode.
	Slots int
	Mode  string
	// Asked is what the caller asked for.
	Asked      int
	AskedMode  string
	HolderDesc string
}

func (e *SlotsMismatchError) Error() string {
	return fmt.Sprintf("%q is in use with --slots %d (%s), but this caller asked for --slots %d; every holder of a name must give the same slot count", e.Name, e.Slots, e.HolderDesc, e.Asked)
}

// Waiter is a process waiting in line for a name.
type Waiter struct {
	WaitID  string `json:"wait_id"`
	Mode    string `json:"mode"`
	Slots   int    `json:"slots,omitempty"`
	Owner   string `json:"owner"`
	AgentID string `json:"agent_id,omitempty"`
	Holder
	// HolderPID is the process the lock is wanted for when it is not the
	// waiting process itself (lokt lock waits for its shell).
	HolderPID int       `json:"holder_pid,omitempty"`
	Since     time.Time `json:"since"`
	// Position is 1 for the head of the line.
	Position int `json:"position"`
}

// HolderState is one holder of a name and its judgement.
type HolderState struct {
	*Lock
	State State `json:"state"`
}

func (o *AcquireOptions) mode() string {
	switch {
	case o.Shared:
		return ModeShared
	case o.Slots > 0:
		return ModeSlots
	}
	return ModeExclusive
}

// multi says whether this acquisition needs the version 2 record.
func (o *AcquireOptions) multi() bool { return o.Shared || o.Slots > 0 }

func validateSlots(o *AcquireOptions) error {
	switch {
	case o.Shared && o.Slots != 0:
		return errors.New("a lock is either shared or counted in slots: give --shared or --slots, not both")
	case o.Slots < 0 || o.Slots > MaxSlots:
		return fmt.Errorf("slot count must be between 1 and %d (got %d)", MaxSlots, o.Slots)
	}
	return nil
}

// isMulti tells a version 2 record from anything else without decoding it
// fully.
func isMulti(data []byte) bool {
	var probe struct {
		Version int `json:"version"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Version == lockfile.MultiVersion
}

// decodeView reads a lock record of either version as a multi-holder view;
// a version 1 record is one exclusive holder and no line.
func (r *Root) decodeView(name string, data []byte) (*lockfile.Multi, error) {
	if !isMulti(data) {
		l, err := r.decodeLock(name, data)
		if err != nil {
			return nil, err
		}
		return &lockfile.Multi{Version: lockfile.MultiVersion, Name: name, Mode: ModeExclusive, Holders: []*lockfile.Lock{l}}, nil
	}
	m, err := lockfile.DecodeMulti(data)
	if err = r.recordErr(store.Locks, name, err, func() string { return m.Name }); err != nil {
		return nil, err
	}
	return m, nil
}

// putView stores a view in the smallest shape that says it: nothing when
// nobody holds or waits, version 1 for a lone exclusive holder, version 2
// otherwise. seq is the fencing sequence to store (0 keeps it).
func putView(v *lockfile.Multi, seq uint64) (store.Change, error) {
	durable := false
	for _, h := range v.Holders {
		durable = durable || mustSurviveCrash(h)
	}
	switch {
	case len(v.Holders) == 0 && len(v.Waiters) == 0:
		return store.Change{Op: store.Delete, Durable: durable, Seq: seq}, nil
	case len(v.Holders) == 1 && v.Mode == ModeExclusive && len(v.Waiters) == 0:
		h := *v.Holders[0]
		h.Version = lockfile.Version
		return put(&h, seq)
	}
	if len(v.Holders) == 0 {
		v.Mode, v.Slots = ModeExclusive, 0
	}
	for _, h := range v.Holders {
		h.Version = lockfile.MultiVersion
		h.Extra = nil
	}
	v.Version = lockfile.MultiVersion
	data, err := lockfile.Encode(v)
	if err != nil {
		return store.Change{}, err
	}
	return store.Change{Op: store.Put, Data: data, Seq: seq, Durable: durable}, nil
}

// putViewKept is putView for a write by the holder of acquisition id,
// whose evidence is ev: a lone exclusive holder's version 1 record goes on
// that evidence (store.Change.Kept) when the holder is the writer. A
// version 2 record is never tied to one holder's evidence: with leases,
// the end of that one lease would take every holder's entry with it.
func putViewKept(v *lockfile.Multi, seq uint64, ev store.Kept, id string) (store.Change, error) {
	ch, err := putView(v, seq)
	if err == nil && ev != nil && ch.Op == store.Put && len(v.Holders) == 1 && len(v.Waiters) == 0 &&
		v.Mode == ModeExclusive && v.Holders[0].LockID == id {
		ch.Kept = ev
	}
	return ch, err
}

// waiterGone says whether a waiter's place can be given up for it.
func (r *Root) waiterGone(ctx context.Context, name string, w *lockfile.Waiter, now time.Time) bool {
	l := &lockfile.Lock{Host: w.Host, PID: w.PID, PIDNS: w.PIDNS}
	if w.PID != 0 && r.foreign(l) == "" {
		return r.liveness(w.PID, w.PIDStart) == proc.Dead
	}
	// A waiter lokt cannot check by pid: its evidence, where it keeps one
	// that is a lease (store.Leaser), says at once; else only its
	// renewals say it is still there.
	if k, ok := r.store.(store.Keeper); ok && w.Kept && w.LockID != "" {
		if _, leased := k.(store.Leaser); leased {
			held, err := k.Alive(ctx, store.Key{NS: store.Locks, Name: name}, w.LockID)
			return err == nil && !held
		}
	}
	return !now.Before(w.ExpiresAt.Time)
}

// sweep drops stale holders and departed waiters from v, returning the
// holders it dropped with their states.
func (r *Root) sweep(ctx context.Context, v *lockfile.Multi, now time.Time) (gone []*lockfile.Lock, states []State, changed bool) {
	kept := v.Holders[:0:0]
	for _, h := range v.Holders {
		if st := r.judge(ctx, h, now); st.Stale() {
			gone, states = append(gone, h), append(states, st)
			continue
		}
		kept = append(kept, h)
	}
	waiters := v.Waiters[:0:0]
	for i := range v.Waiters {
		if r.waiterGone(ctx, v.Name, &v.Waiters[i], now) {
			continue
		}
		waiters = append(waiters, v.Waiters[i])
	}
	changed = len(kept) != len(v.Holders) || len(waiters) != len(v.Waiters)
	v.Holders, v.Waiters = kept, waiters
	if len(kept) == 0 {
		v.Mode, v.Slots = ModeExclusive, 0
	}
	return gone, states, changed
}

// fits says whether one more holder of mode (with slots) may join holders
// of the given mode and count.
func fits(curMode string, curSlots, count int, mode string) bool {
	switch {
	case count == 0:
		return true
	case curMode == ModeShared && mode == ModeShared:
		return true
	case curMode == ModeSlots && mode == ModeSlots:
		return count < curSlots
	}
	return false
}

// slotsInUse is the slot count a name is in use with (by holders, else by
// waiters), 0 when none.
func slotsInUse(v *lockfile.Multi) (int, string) {
	if v.Mode == ModeSlots && len(v.Holders) > 0 {
		h := v.Holders[0]
		return v.Slots, fmt.Sprintf("held by %s@%s pid %d", h.Owner, h.Host, h.PID)
	}
	for _, w := range v.Waiters {
		if w.Mode == ModeSlots {
			return w.Slots, fmt.Sprintf("waited for by %s@%s pid %d", w.Owner, w.Host, w.PID)
		}
	}
	return 0, ""
}

// multiAttempt is what one acquisition attempt on a multi-holder view
// produced, carried out of the compare-and-swap callback.
type multiAttempt struct {
	result  *Lock
	events  []Event
	gone    []*lockfile.Lock
	blocked error // set when the attempt wrote (a sweep, a place in line) but did not acquire
	until   time.Time
}

// acquireMulti is tryAcquire's step on a version 2 record, or for a shared
// or slot acquirer. v is nil when there is no record (or a corrupt one).
func (r *Root) acquireMulti(ctx context.Context, name string, o *AcquireOptions, v *lockfile.Multi, frozen *Freeze, seq uint64, now time.Time, reportDeny bool, a *multiAttempt) (store.Change, error) {
	actor := Actor{Identity: o.Identity, Holder: o.Holder}
	mode := o.mode()
	if v == nil {
		v = &lockfile.Multi{Version: lockfile.MultiVersion, Name: name, Mode: ModeExclusive}
	}
	fromV1 := len(v.Waiters) == 0 && len(v.Holders) == 1 && v.Holders[0].Version == lockfile.Version
	for _, h := range v.Holders {
		if sameHolder(h, o.Holder) {
			if v.Mode != mode || (mode == ModeSlots && v.Slots != o.Slots) {
				return store.Change{}, fmt.Errorf("this process already holds %q in %s mode; release it before taking it as %s", name, describeMode(v.Mode, v.Slots), describeMode(mode, o.Slots))
			}
			h.Owner, h.AgentID = o.Owner, o.AgentID
			h.RenewedAt = lockfile.TimePtr(now)
			setTTL(h, o.TTL, now)
			if o.Meta != nil {
				h.Meta = o.Meta
			}
			a.result = withMode(fromRecord(h), v)
			a.events = append(a.events, Event{Time: now, Type: EventRefresh, Name: name, Actor: actor, Lock: a.result})
			return putViewKept(v, 0, o.evidence, o.lockID)
		}
	}
	if frozen != nil {
		a.until = frozen.ExpiresAt
		if reportDeny {
			a.events = append(a.events, Event{Time: now, Type: EventFreezeDeny, Name: name, Actor: actor, Freeze: frozen})
		}
		return store.Change{}, &FrozenError{Freeze: frozen, Now: now}
	}
	recMode, recSlots := v.Mode, v.Slots
	gone, states, changed := r.sweep(ctx, v, now)
	if mode == ModeSlots {
		if n, who := slotsInUse(v); n != 0 && n != o.Slots {
			return store.Change{}, &SlotsMismatchError{Name: name, Slots: n, Mode: ModeSlots, Asked: o.Slots, AskedMode: mode, HolderDesc: who}
		}
	}
	for i, g := range gone {
		l := fromRecord(g)
		if recMode != ModeExclusive {
			l.Mode, l.Slots = recMode, recSlots
		}
		a.events = append(a.events, Event{Time: now, Type: EventStaleBreak, Name: name, Actor: actor, Lock: l, Reason: string(states[i])})
	}
	a.gone = gone
	// Who would go in, in line order, before this acquirer.
	me := len(v.Waiters)
	for i := range v.Waiters {
		if o.waitID != "" && v.Waiters[i].WaitID == o.waitID {
			me = i
			break
		}
	}
	curMode, curSlots, count := v.Mode, v.Slots, len(v.Holders)
	ahead := 0
	clear := true
	for i := range v.Waiters[:me] {
		w := &v.Waiters[i]
		if !fits(curMode, curSlots, count, w.Mode) {
			clear = false
			break
		}
		if count == 0 {
			curMode, curSlots = w.Mode, w.Slots
		}
		count++
		ahead++
	}
	if clear && fits(curMode, curSlots, count, mode) {
		if me < len(v.Waiters) {
			v.Waiters = append(v.Waiters[:me], v.Waiters[me+1:]...)
		}
		if len(v.Holders) == 0 {
			v.Mode, v.Slots = mode, o.Slots
		}
		id := o.lockID
		if id == "" {
			id = newLockID()
		}
		token := seq
		for _, h := range v.Holders {
			token = max(token, h.Token)
		}
		for _, g := range gone {
			token = max(token, g.Token)
		}
		token++
		rec := &lockfile.Lock{
			Version: lockfile.MultiVersion, Name: name, LockID: id,
			Owner: o.Owner, AgentID: o.AgentID,
			Host: o.Holder.Host, PID: o.Holder.PID, PIDStart: o.Holder.Start, PIDNS: o.Holder.NS,
			Kept:       o.kept,
			AcquiredAt: lockfile.NewTime(now),
			Token:      token,
			Meta:       o.Meta,
		}
		setTTL(rec, o.TTL, now)
		v.Holders = append(v.Holders, rec)
		a.result = withMode(fromRecord(rec), v)
		a.events = append(a.events, Event{Time: now, Type: EventAcquire, Name: name, Actor: actor, Lock: a.result})
		return putViewKept(v, token, o.evidence, id)
	}
	// Blocked: by the holders, or by a waiter ahead.
	held := r.blockedBy(name, v, mode, o.Slots, me, now)
	for _, h := range v.Holders {
		if h.ExpiresAt != nil && (a.until.IsZero() || h.ExpiresAt.Before(a.until)) {
			a.until = h.ExpiresAt.Time
		}
	}
	if reportDeny {
		a.events = append(a.events, Event{Time: now, Type: EventDeny, Name: name, Actor: actor, Lock: held.Lock})
	}
	// Take (or keep) a place in line. A lone version 1 holder's record is
	// left as it is, so a lokt that knows only version 1 can still release
	// it: the acquirer then waits without a place, as exclusive waiters do.
	if o.waitID != "" && !fromV1 {
		self := Self()
		if me == len(v.Waiters) {
			w := lockfile.Waiter{
				WaitID: o.waitID, Mode: mode, Slots: o.Slots,
				Owner: o.Owner, AgentID: o.AgentID,
				Host: self.Host, PID: self.PID, PIDStart: self.Start, PIDNS: self.NS,
				Since: lockfile.NewTime(now), ExpiresAt: lockfile.NewTime(now.Add(waiterTTL)),
			}
			if o.kept {
				w.LockID, w.Kept = o.lockID, true
			}
			if o.Holder.PID != self.PID {
				w.HolderPID = o.Holder.PID
			}
			v.Waiters = append(v.Waiters, w)
			held.Position = len(v.Waiters)
			changed = true
		} else if v.Waiters[me].ExpiresAt.Sub(now) < waiterTTL/2 {
			v.Waiters[me].ExpiresAt = lockfile.NewTime(now.Add(waiterTTL))
			changed = true
		}
	}
	if !changed {
		return store.Change{}, held
	}
	a.blocked = held
	return putView(v, 0)
}

// blockedBy builds the *HeldError for an acquirer that must wait: the
// holders in the way, and how many wait ahead.
func (r *Root) blockedBy(name string, v *lockfile.Multi, mode string, slots, me int, now time.Time) *HeldError {
	e := &HeldError{Now: now, Mode: v.Mode, Slots: v.Slots, Holders: len(v.Holders), Ahead: me, Multi: true}
	if len(v.Holders) > 0 {
		h := v.Holders[0]
		e.Lock = withMode(fromRecord(h), v)
		e.Foreign = r.foreign(h)
		e.Remote = e.Foreign != ""
	} else {
		w := v.Waiters[0]
		e.Lock = &Lock{Name: name, Owner: w.Owner, AgentID: w.AgentID, Holder: Holder{Host: w.Host, PID: w.PID}, AcquiredAt: w.Since.Time, Mode: w.Mode}
	}
	if me < len(v.Waiters) {
		e.Position = me + 1
	}
	return e
}

func withMode(l *Lock, v *lockfile.Multi) *Lock {
	if v.Mode != ModeExclusive {
		l.Mode, l.Slots = v.Mode, v.Slots
	}
	return l
}

func describeMode(mode string, slots int) string {
	if mode == ModeSlots {
		return fmt.Sprintf("slots (%d)", slots)
	}
	return mode
}

// leaveLine takes a waiter that gives up out of the line.
func (r *Root) leaveLine(ctx context.Context, name, waitID string) {
	_ = r.store.Update(ctx, store.Key{NS: store.Locks, Name: name}, func(cur []byte, _ uint64) (store.Change, error) {
		if cur == nil || !isMulti(cur) {
			return store.Change{}, nil
		}
		v, err := r.decodeView(name, cur)
		if err != nil {
			return store.Change{}, nil //nolint:nilerr // nothing of ours to take out of a record we cannot read
		}
		for i := range v.Waiters {
			if v.Waiters[i].WaitID == waitID {
				v.Waiters = append(v.Waiters[:i], v.Waiters[i+1:]...)
				return putView(v, 0)
			}
		}
		return store.Change{}, nil
	})
}

// waitMulti is the wait of an acquirer that may take a place in a
// version 2 line: it rechecks on every change of the record (a slot freed
// is a rewrite, not a removal), and on a timer for holders that die
// without writing.
func (r *Root) waitMulti(ctx context.Context, name string, o *AcquireOptions, timedOut func(error) error) (*Lock, error) {
	defer func() {
		if o.waitID != "" {
			r.leaveLine(context.WithoutCancel(ctx), name, o.waitID)
		}
	}()
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	keys := []store.Key{{NS: store.Locks, Name: name}, {NS: store.Freezes, Name: name}}
	var changed <-chan struct{}
	var err error
	if cw, ok := r.store.(store.ChangeWatcher); ok {
		changed, err = cw.WatchChanges(watchCtx, keys...)
	} else {
		changed, err = r.store.Watch(watchCtx, keys...)
	}
	if err != nil {
		changed = nil
	}
	delay := minPoll
	for {
		l, until, blocker := r.tryAcquire(ctx, name, o, false)
		if !isBlocked(blocker) {
			if blocker == nil {
				o.waitID = "" // taken out of the line by the acquisition itself
			}
			return l, blocker
		}
		if o.OnBlocked != nil {
			o.OnBlocked(blocker)
		}
		if !r.pause(ctx, &delay, until, changed) {
			return nil, timedOut(blocker)
		}
	}
}

// multiBlock reports whether a blocker came from a version 2 record, whose
// line the caller must join instead of the exclusive kernel line.
func multiBlock(err error) bool {
	held, ok := err.(*HeldError) //nolint:errorlint // a wrapped one (a timeout) has ended the wait
	return ok && held.Multi
}

// statusMulti fills a Status from a version 2 record.
func (r *Root) statusMulti(ctx context.Context, st *Status, v *lockfile.Multi) {
	st.Mode, st.Slots = v.Mode, v.Slots
	for _, h := range v.Holders {
		hs := HolderState{Lock: withMode(fromRecord(h), v), State: r.judge(ctx, h, st.Now)}
		st.Holders = append(st.Holders, hs)
	}
	pos := 0
	for i := range v.Waiters {
		w := &v.Waiters[i]
		if r.waiterGone(ctx, v.Name, w, st.Now) {
			continue
		}
		pos++
		st.Waiters = append(st.Waiters, Waiter{
			WaitID: w.WaitID, Mode: w.Mode, Slots: w.Slots, Owner: w.Owner, AgentID: w.AgentID,
			Holder:    Holder{Host: w.Host, PID: w.PID, Start: w.PIDStart, NS: w.PIDNS},
			HolderPID: w.HolderPID, Since: w.Since.Time, Position: pos,
		})
	}
	st.State = StateWaiting
	for i, h := range st.Holders {
		if i == 0 || h.State == StateLive {
			st.Lock = h.Lock
		}
		if h.State == StateLive {
			break
		}
	}
	if len(st.Holders) > 0 {
		st.State = st.Holders[0].State
		for _, h := range st.Holders {
			if h.State == StateLive {
				st.State = StateLive
			}
		}
	}
}

// describeHolders says who holds a multi-holder name, for messages.
func describeHolders(e *HeldError) string {
	var b strings.Builder
	switch e.Mode {
	case ModeSlots:
		fmt.Fprintf(&b, "all %d slots are taken (", e.Slots)
	case ModeShared:
		fmt.Fprintf(&b, "%d shared holder(s) (", e.Holders)
	default:
		if e.Holders == 0 {
			b.WriteString("the line (first waiting: ")
		} else {
			b.WriteString("an exclusive holder (")
		}
	}
	if e.Holders == 0 {
		fmt.Fprintf(&b, "%s@%s pid %d)", e.Lock.Owner, e.Lock.Host, e.Lock.PID)
	} else {
		fmt.Fprintf(&b, "first: %s)", describeHolder(e.Lock, e.Now, e.Foreign, e.Leased))
	}
	if e.Ahead > 0 {
		fmt.Fprintf(&b, "; %d waiting ahead", e.Ahead)
	}
	return b.String()
}

// ownEntry finds the caller's acquisition lockID in a record of either
// version.
func (r *Root) ownEntry(name string, cur []byte, lockID string) (*lockfile.Multi, *lockfile.Lock, error) {
	if cur == nil || !isMulti(cur) {
		old, err := r.decodeOwn(name, cur, lockID)
		if err != nil {
			return nil, nil, err
		}
		return &lockfile.Multi{Version: lockfile.MultiVersion, Name: name, Mode: ModeExclusive, Holders: []*lockfile.Lock{old}}, old, nil
	}
	v, err := r.decodeView(name, cur)
	var corrupt *CorruptError
	if errors.As(err, &corrupt) {
		return nil, nil, fmt.Errorf("%w: %w", ErrLost, err)
	}
	if err != nil {
		return nil, nil, err
	}
	for _, h := range v.Holders {
		if h.LockID == lockID {
			return v, h, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: %q no longer has this holder (lock_id %s): released or broken by someone else", ErrLost, name, lockID)
}

// dropHolder removes one holder entry from v.
func dropHolder(v *lockfile.Multi, h *lockfile.Lock) {
	for i, x := range v.Holders {
		if x == h {
			v.Holders = append(v.Holders[:i], v.Holders[i+1:]...)
			break
		}
	}
	if len(v.Holders) == 0 {
		v.Mode, v.Slots = ModeExclusive, 0
	}
}

// releaseMulti is Release on a version 2 record without a lock_id: the
// caller's own entry (see below) for ReleaseOwn; every stale holder for BreakStale; every holder
// for Force. The line is left as it is: its waiters go next.
func (r *Root) releaseMulti(ctx context.Context, name string, o ReleaseOptions, owner string, cur []byte, now time.Time, actor Actor, removed **Lock, events *[]Event, gone *[]*Lock) (store.Change, error) {
	v, err := r.decodeView(name, cur)
	var corrupt *CorruptError
	switch {
	case errors.As(err, &corrupt) && o.Mode != ReleaseOwn:
		*events = append(*events, Event{Time: now, Type: EventCorruptBreak, Name: name, Actor: actor, Reason: corrupt.Err.Error()})
		return store.Change{Op: store.Delete}, nil
	case errors.As(err, &corrupt):
		return store.Change{}, fmt.Errorf("%w; remove it with: lokt unlock %s --break-stale", err, name)
	case err != nil:
		return store.Change{}, err
	}
	if len(v.Holders) == 0 {
		return store.Change{}, fmt.Errorf("lock %q has no holder, only processes waiting for it: %w", name, ErrNotFound)
	}
	mode := v.Mode
	take := func(h *lockfile.Lock, typ EventType, reason string) {
		l := fromRecord(h)
		if mode != ModeExclusive {
			l.Mode, l.Slots = mode, v.Slots
		}
		if *removed == nil {
			*removed = l
		}
		*gone = append(*gone, l)
		*events = append(*events, Event{Time: now, Type: typ, Name: name, Actor: actor, Lock: l, Reason: reason})
		dropHolder(v, h)
	}
	switch o.Mode {
	case ReleaseOwn:
		// The caller's own entry: one it holds (its process, an ancestor,
		// or no process) under its owner label; else a stale one under
		// its label, which has nothing left to protect.
		var mine, liveOther *lockfile.Lock
		for _, h := range v.Holders {
			if h.Owner == owner && o.callerHolds(h) {
				mine = h
				break
			}
		}
		for _, h := range v.Holders {
			if mine != nil || h.Owner != owner {
				continue
			}
			if r.judge(ctx, h, now).Stale() {
				mine = h
			} else if liveOther == nil {
				liveOther = h
			}
		}
		switch {
		case mine != nil:
		case liveOther != nil:
			return store.Change{}, &LiveHolderError{Lock: withMode(fromRecord(liveOther), v), Foreign: r.foreign(liveOther), Now: now}
		default:
			h := v.Holders[0]
			return store.Change{}, &NotOwnerError{Lock: withMode(fromRecord(h), v), Caller: owner, State: r.judge(ctx, h, now), Now: now}
		}
		take(mine, EventRelease, "")
	case BreakStale:
		for _, h := range append([]*lockfile.Lock(nil), v.Holders...) {
			if st := r.judge(ctx, h, now); st.Stale() {
				take(h, EventStaleBreak, string(st))
			}
		}
		if *removed == nil {
			h := v.Holders[0]
			return store.Change{}, &HeldError{Lock: withMode(fromRecord(h), v), Now: now, Remote: r.foreign(h) != "", Foreign: r.foreign(h)}
		}
	case Force:
		for _, h := range append([]*lockfile.Lock(nil), v.Holders...) {
			take(h, EventForceBreak, string(r.judge(ctx, h, now)))
		}
	}
	return putView(v, 0)
}

// pruneMulti drops the stale holders and departed waiters of a version 2
// record.
func (r *Root) pruneMulti(ctx context.Context, name string, cur []byte, actor Actor, events *[]Event) (store.Change, error) {
	now := r.now()
	v, err := r.decodeView(name, cur)
	var corrupt *CorruptError
	if errors.As(err, &corrupt) {
		*events = append(*events, Event{Time: now, Type: EventCorruptBreak, Name: name, Actor: actor, Reason: corrupt.Err.Error()})
		return store.Change{Op: store.Delete}, nil
	}
	if err != nil {
		return store.Change{}, err
	}
	mode, slots := v.Mode, v.Slots
	gone, states, changed := r.sweep(ctx, v, now)
	if !changed {
		return store.Change{}, nil
	}
	for i, g := range gone {
		l := fromRecord(g)
		if mode != ModeExclusive {
			l.Mode, l.Slots = mode, slots
		}
		*events = append(*events, Event{Time: now, Type: EventAutoPrune, Name: name, Actor: actor, Lock: l, Reason: string(states[i])})
	}
	return putView(v, 0)
}

// holdsID says whether a status still lists the acquisition id.
func holdsID(st *Status, id string) bool {
	for _, h := range st.Holders {
		if h.Lock != nil && h.LockID == id {
			return true
		}
	}
	return st.Lock != nil && st.Lock.LockID == id
}
