package lokt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/store"
)

// HoldOptions are AcquireOptions plus what keeping a lock needs.
type HoldOptions struct {
	AcquireOptions
	// OnTrouble, if set, is called from the keeping goroutine when a
	// renewal fails for a reason that may pass (an I/O error); the lock is
	// not lost yet and the renewal is retried. It must not block.
	OnTrouble func(error)
}

// Held is a lock this process holds and keeps, until Release or until it is
// lost: with a TTL it is renewed every TTL/2, without one it is reread every
// few seconds, so a forced break is noticed either way.
//
// Where the store keeps holder evidence (store.Keeper), the evidence is
// created before the record and named in it. Processes that inherit Files
// keep the lock live after this process is gone, and the lock is free once
// they are all gone too, without waiting for a TTL.
//
// Held does not implement sync.Locker: holding can fail, and losing a lock
// is an event the holder must act on (Done, Err).
type Held struct {
	root *Root
	name string
	o    HoldOptions
	kept store.Kept // nil when the store keeps no evidence

	mu   sync.Mutex
	lock *Lock
	err  error

	done    chan struct{} // closed when the lock is lost
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the keeping goroutine has returned
	ended   bool          // Release or Abandon ran
	closed  bool          // the evidence was given up (only after ended)
}

// keepInterval is how often a lock without a TTL is reread to notice that it
// was broken.
const keepInterval = 2 * time.Second

// Hold acquires name as Acquire does (waiting if o.Wait) and starts keeping
// it. The caller must end it with Release or Abandon.
func (r *Root) Hold(ctx context.Context, name string, o HoldOptions) (*Held, error) {
	if err := o.validate(name); err != nil {
		return nil, err
	}
	o.lockID = newLockID()
	h := &Held{root: r, name: name, done: make(chan struct{}), stopped: make(chan struct{})}
	if k, ok := r.store.(store.Keeper); ok && o.Holder.PID != 0 {
		kept, err := k.Keep(ctx, store.Key{NS: store.Locks, Name: name}, o.lockID)
		switch {
		case err == nil:
			h.kept, o.kept, o.evidence = kept, true, kept
		case !errors.Is(err, errors.ErrUnsupported):
			return nil, r.wrapStoreErr(name, err)
		}
	}
	h.o = o
	l, err := r.Acquire(ctx, name, o.AcquireOptions)
	if err != nil {
		h.dropEvidence(context.WithoutCancel(ctx))
		return nil, err
	}
	h.lock = l
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.cancel = cancel
	go h.keep(kctx)
	return h, nil
}

// Lock is the lock as last written by this holder.
func (h *Held) Lock() *Lock {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lock
}

// Files are the descriptors a child process must inherit for the lock to
// stay live while it (and whatever it starts) runs, even if this process
// dies. Empty when the store keeps no such evidence.
func (h *Held) Files() []*os.File {
	if h.kept == nil {
		return nil
	}
	return h.kept.Files()
}

// Done is closed when the lock is lost: broken by someone else, or its
// evidence (a lease) expired. Err then says why.
func (h *Held) Done() <-chan struct{} { return h.done }

// Err is nil while the lock is held, and after Done the reason it was lost
// (wrapping ErrLost, or the error that made it unprovable).
func (h *Held) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// SetTree records the process that runs under the lock (a command guard
// started) and its process group, so that the lock stays live while any of
// them does, should this process die first.
func (h *Held) SetTree(ctx context.Context, child Holder, pgid int) error {
	// A store that stopped answering would hold this for its request
	// timeout, and guard for that long before it can report the loss.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-h.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if n, ok := h.kept.(store.Noter); ok {
		// One small write, off the record: readers only look at the note
		// once nobody holds the evidence (types.go, notedTree).
		t := tree{ChildPID: child.PID, ChildStart: child.Start, PGID: pgid}
		data, err := json.Marshal(t)
		if err == nil {
			err = n.Note(data)
		}
		if err != nil {
			return err
		}
		h.mu.Lock()
		l := *h.lock
		l.ChildPID, l.ChildStart, l.PGID = t.ChildPID, t.ChildStart, t.PGID
		h.lock = &l
		h.mu.Unlock()
		return nil
	}
	l, err := h.root.Renew(ctx, h.name, h.lock.LockID, RenewOptions{Identity: h.o.Identity, Holder: h.o.Holder, TTL: h.o.TTL, Child: child, Group: pgid, evidence: h.kept})
	if err != nil {
		if isLost(err) {
			h.lose(err)
		}
		if lost := h.Err(); lost != nil {
			return lost
		}
		return err
	}
	h.mu.Lock()
	h.lock = l
	h.mu.Unlock()
	return nil
}

// StillHeldError is returned by Release when processes of the lock's tree
// still run: the lock was not released and stays held until they are gone.
type StillHeldError struct {
	Name string
	// PGID is the recorded process group, if it still has members.
	PGID int
}

func (e *StillHeldError) Error() string {
	if e.PGID != 0 {
		return fmt.Sprintf("lock %q stays held: processes of its command's process group %d still run; it is free once they have all exited", e.Name, e.PGID)
	}
	return fmt.Sprintf("lock %q stays held: processes started under it still run; it is free once they have all exited", e.Name)
}

// OutlivedError reports a lock released while processes of its holder's
// command still run: its evidence (a lease) cannot be inherited, so the
// lock could not stay theirs, and they run without it.
type OutlivedError struct {
	Name string
	PGID int
}

func (e *OutlivedError) Error() string {
	return fmt.Sprintf("lock %q released while processes of its command's process group %d still run: they run without the lock, since a lease ends with its holder", e.Name, e.PGID)
}

// Release stops keeping the lock and removes it, if it is still this
// acquisition. If processes that inherited Files or share the recorded
// process group still run, the lock is left in place for them and Release
// returns a *StillHeldError. Where the evidence cannot be inherited (a
// lease), leaving the record would not keep it theirs: it is released, and
// Release returns an *OutlivedError. A lost lock gives Err().
func (h *Held) Release(ctx context.Context) error {
	if !h.end() {
		return nil
	}
	if err := h.Err(); err != nil {
		return err
	}
	// Evidence that children inherit (a kernel lock) is given up first, so
	// that whether the tree still holds it can be asked. Evidence nobody
	// inherits (a lease) is given up after the record: where its end is
	// conclusive, another holder would judge the entry dead in between.
	inherited := h.kept != nil && len(h.kept.Files()) > 0
	if inherited {
		h.closeEvidence()
	}
	defer h.closeEvidence()
	mine := h.Lock()
	var still *StillHeldError
	_, err := h.root.Release(ctx, h.name, ReleaseOptions{Identity: h.o.Identity, Holder: h.o.Holder, LockID: mine.LockID, unless: func(l *lockfile.Lock) bool {
		still = h.root.treeAlive(ctx, l, mine.PGID, mine.ChildStart, inherited)
		return still != nil && inherited
	}})
	if still != nil && inherited {
		return still
	}
	if err != nil && isLost(err) {
		h.lose(err)
	}
	if err == nil && still != nil && still.PGID != 0 {
		return &OutlivedError{Name: h.name, PGID: still.PGID}
	}
	return err
}

// Abandon stops keeping the lock without releasing it: the record stays,
// judged live for as long as its evidence, its holder or its tree lives.
func (h *Held) Abandon() {
	if h.end() {
		h.closeEvidence()
	}
}

// end stops the keeping goroutine once; it reports whether this call did.
func (h *Held) end() bool {
	h.mu.Lock()
	if h.ended {
		h.mu.Unlock()
		return false
	}
	h.ended = true
	h.mu.Unlock()
	h.cancel()
	<-h.stopped
	return true
}

func (h *Held) closeEvidence() {
	if h.kept != nil && !h.closed {
		h.closed = true
		_ = h.kept.Close()
	}
}

// dropEvidence undoes Keep for an acquisition that never happened.
func (h *Held) dropEvidence(ctx context.Context) {
	if h.kept == nil {
		return
	}
	_ = h.kept.Close()
	if k, ok := h.root.store.(store.Keeper); ok {
		_ = k.Forget(ctx, store.Key{NS: store.Locks, Name: h.name}, h.o.lockID)
	}
}

func (h *Held) lose(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
		close(h.done)
	}
}

// keep renews (or rereads) the lock until it is lost or ended.
func (h *Held) keep(ctx context.Context) {
	defer close(h.stopped)
	defer func() {
		if pv := recover(); pv != nil {
			h.lose(fmt.Errorf("%w: keeping %q failed: internal error, please report it: %v\n%s", ErrLost, h.name, pv, debug.Stack()))
		}
	}()
	interval := keepInterval
	if h.o.TTL > 0 {
		interval = max(h.o.TTL/2, 10*time.Millisecond)
	}
	// After a failed renewal, retry well before the lock can expire.
	retry := max(min(interval/4, time.Second), 10*time.Millisecond)
	var lost <-chan struct{}
	if h.kept != nil {
		lost = h.kept.Done()
	}
	wait, failing := interval, false
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-lost:
			t.Stop()
			h.lose(fmt.Errorf("%w: %q: the store ended this holder's lease", ErrLost, h.name))
			return
		case <-t.C:
		}
		err := h.beatUnlessLost(ctx, lost)
		select {
		case <-lost:
			h.lose(fmt.Errorf("%w: %q: the store ended this holder's lease", ErrLost, h.name))
			return
		default:
		}
		switch {
		case err == nil:
			failing, wait = false, interval
		case ctx.Err() != nil:
			return
		case isLost(err):
			h.lose(err)
			return
		default:
			if !failing && h.o.OnTrouble != nil {
				h.o.OnTrouble(err)
			}
			failing, wait = true, retry
		}
	}
}

// beatUnlessLost beats, cut short if the store ends the lease meanwhile:
// when the store cannot be reached, a beat can take its request timeout
// (more than one, for a reread) while the lease runs out sooner, and the
// loss must be reported when it happens.
func (h *Held) beatUnlessLost(ctx context.Context, lost <-chan struct{}) error {
	if lost == nil {
		return h.beat(ctx)
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-lost:
			cancel()
		case <-bctx.Done():
		}
	}()
	return h.beat(bctx)
}

// beat renews the lock (a compare-and-swap on its lock_id), or, with no TTL
// to extend, checks that the record still carries it.
func (h *Held) beat(ctx context.Context) error {
	id := h.Lock().LockID
	if h.o.TTL > 0 {
		l, err := h.root.Renew(ctx, h.name, id, RenewOptions{Identity: h.o.Identity, Holder: h.o.Holder, TTL: h.o.TTL, evidence: h.kept})
		if err == nil {
			h.mu.Lock()
			h.lock = l
			h.mu.Unlock()
		}
		return err
	}
	st, err := h.root.get(ctx, h.name, false)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %q no longer exists (released or broken by someone else)", ErrLost, h.name)
	case err != nil:
		return err
	case st.Lock == nil && st.Problem != nil:
		return st.Problem
	case holdsID(st, id):
	case st.Lock == nil:
		return fmt.Errorf("%w: %q no longer has this holder (lock_id %s)", ErrLost, h.name, id)
	default:
		l := st.Lock
		return fmt.Errorf("%w: %q now belongs to %s@%s pid %d (lock_id %s)", ErrLost, h.name, l.Owner, l.Host, l.PID, l.LockID)
	}
	return nil
}

// isLost: the record is not our acquisition any more, or can no longer be
// proven to be (damaged, or rewritten by a newer lokt).
func isLost(err error) bool {
	var corrupt *CorruptError
	var newer *UnsupportedVersionError
	return errors.Is(err, ErrLost) || errors.As(err, &corrupt) || errors.As(err, &newer)
}

// treeAlive says whether processes of a record's tree still keep it live,
// apart from its holder: inherited evidence, or its command's process
// group. Only asked by the holder itself, when it releases; inherited says
// whether its evidence is of the kind children inherit (and this holder has
// already given up its own hold on it).
func (r *Root) treeAlive(ctx context.Context, l *lockfile.Lock, pgid int, leaderStart string, inherited bool) *StillHeldError {
	if l.Kept && inherited {
		if k, ok := r.store.(store.Keeper); ok {
			if held, err := k.Alive(ctx, store.Key{NS: store.Locks, Name: l.Name}, l.LockID); err != nil || held {
				return &StillHeldError{Name: l.Name}
			}
		}
	}
	if pgid > 0 && r.groupLiveness(pgid, leaderStart) == proc.Alive {
		return &StillHeldError{Name: l.Name, PGID: pgid}
	}
	return nil
}
