package lokt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/store"
)

// Status is one lock as judged now.
type Status struct {
	Name  string
	State State
	// Lock is nil when the record is corrupt or of a newer version.
	Lock *Lock
	// Problem explains StateCorrupt and StateUnsupported.
	Problem error
	// Now is when State was judged.
	Now time.Time
	// Foreign says why the holder's processes cannot be checked here ("on
	// another host", "in another PID namespace"); empty when they can.
	Foreign string
	// Leased says the record ends with its holder's lease (store.Leaser):
	// the holder keeps it only while it renews the lease.
	Leased bool

	// For a name in shared or slots mode, or with a line: its mode and
	// slot count, every holder (Lock is the first live one) and every
	// waiter in line order. A plain exclusive lock has one holder here,
	// and the waiters that announced themselves in the store (in arrival
	// order; the line of such a lock only roughly decides who goes next).
	Mode    string
	Slots   int
	Holders []HolderState
	Waiters []Waiter
	// Version is the protocol version of the record: 2 when its line (if
	// any) is in the record itself and decides who goes next.
	Version int
}

// Get reads and judges one lock. A missing lock gives an error wrapping
// ErrNotFound; a symlink or directory in its place gives an error.
func (r *Root) Get(ctx context.Context, name string) (*Status, error) {
	return r.get(ctx, name, true)
}

// get is Get, without asking the store for announced waiters unless
// waiters is set: a holder checking its own record on every beat has no
// use for them.
func (r *Root) get(ctx context.Context, name string, waiters bool) (*Status, error) {
	if err := lockfile.ValidateName(name); err != nil {
		return nil, err
	}
	data, err := r.store.Read(ctx, store.Key{NS: store.Locks, Name: name})
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("lock %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, r.wrapStoreErr(name, err)
	}
	return r.status(ctx, name, data, waiters), nil
}

func (r *Root) status(ctx context.Context, name string, data []byte, waiters bool) *Status {
	now := r.now()
	st := &Status{Name: name, Now: now, Version: lockfile.Version}
	if isMulti(data) {
		st.Version = lockfile.MultiVersion
		v, err := r.decodeView(name, data)
		var corrupt *CorruptError
		switch {
		case errors.As(err, &corrupt):
			st.State, st.Problem = StateCorrupt, err
		case err != nil:
			st.State, st.Problem = StateUnsupported, err
		default:
			r.statusMulti(ctx, st, v)
		}
		return st
	}
	l, err := r.decodeLock(name, data)
	var corrupt *CorruptError
	switch {
	case errors.As(err, &corrupt):
		st.State, st.Problem = StateCorrupt, err
	case err != nil:
		st.State, st.Problem = StateUnsupported, err
	default:
		st.Lock = fromRecord(l)
		if l.Kept {
			// Show the command's tree that guard noted with its evidence.
			t := r.notedTree(ctx, l, treeOf(l))
			st.Lock.ChildPID, st.Lock.ChildStart, st.Lock.PGID = t.ChildPID, t.ChildStart, t.PGID
		}
		st.State = r.judge(ctx, l, now)
		st.Foreign = r.foreign(l)
		st.Leased = r.leased(l)
		st.Mode = ModeExclusive
		st.Holders = []HolderState{{Lock: st.Lock, State: st.State}}
		if waiters {
			st.Waiters = r.announcedWaiters(ctx, name)
		}
	}
	return st
}

// List reads and judges every lock in the root, sorted by name. Records that
// cannot be read at all (a symlink in the root) are returned as errors
// alongside the rest.
func (r *Root) List(ctx context.Context) ([]*Status, error) {
	names, err := r.store.List(ctx, store.Locks)
	if err != nil {
		return nil, err
	}
	var out []*Status
	var errs []error
	for _, name := range names {
		if lockfile.ValidateName(name) != nil {
			continue // not ours: lokt never creates such a file
		}
		st, err := r.Get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue // released between the listing and the read
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, st)
	}
	return out, errors.Join(errs...)
}

// Names lists the record names in a namespace (store.Locks or
// store.Freezes) without reading the records, for shell completion.
func (r *Root) Names(ctx context.Context, ns store.Namespace) ([]string, error) {
	names, err := r.store.List(ctx, ns)
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if lockfile.ValidateName(n) == nil {
			out = append(out, n)
		}
	}
	return out, nil
}
