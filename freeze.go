package lokt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/store"
)

// FreezeOptions describes a freeze.
type FreezeOptions struct {
	Identity
	Holder Holder
	// TTL is required: a forgotten freeze must end by itself.
	TTL    time.Duration
	Reason string
	// Force replaces an unexpired freeze of another owner. Without it that
	// is a *FreezeOwnerError, so one owner's freeze and reason are never
	// overwritten by accident.
	Force bool
}

// Freeze blocks new acquisitions of name until the TTL ends. Current holders
// are not interrupted. Freezing a name frozen by the same owner replaces the
// freeze; replacing another owner's needs Force, and the freeze event then
// carries the replaced freeze (Event.Replaced).
func (r *Root) Freeze(ctx context.Context, name string, o FreezeOptions) (*Freeze, error) {
	if err := lockfile.ValidateName(name); err != nil {
		return nil, err
	}
	if o.TTL <= 0 {
		return nil, fmt.Errorf("a freeze needs a positive TTL so it cannot outlive its reason, e.g. lokt freeze %s --ttl 30m --reason 'release in progress'", name)
	}
	var result, replaced *Freeze
	err := r.store.Update(ctx, store.Key{NS: store.Freezes, Name: name}, func(cur []byte, _ uint64) (store.Change, error) {
		now := r.now()
		replaced = nil
		if cur != nil {
			old, err := r.decodeFreeze(name, cur)
			if errorsAsUnsupported(err) {
				return store.Change{}, err
			}
			// Precondition: an unexpired freeze of another owner is
			// replaced only by force. A corrupt one is replaced freely.
			if err == nil && now.Before(old.ExpiresAt.Time) && old.Owner != o.Owner {
				if !o.Force {
					return store.Change{}, &FreezeOwnerError{Freeze: freezeFromRecord(old), Caller: o.Owner, Now: now}
				}
				replaced = freezeFromRecord(old)
			}
		}
		rec := &lockfile.Freeze{
			Version: lockfile.Version, Name: name, Owner: o.Owner, AgentID: o.AgentID,
			Host: o.Holder.Host, PID: o.Holder.PID, Reason: o.Reason,
			FrozenAt: lockfile.NewTime(now), ExpiresAt: lockfile.NewTime(now.Add(o.TTL)),
			TTLSec: int64((o.TTL + time.Second - 1) / time.Second),
		}
		result = freezeFromRecord(rec)
		return put(rec, 0)
	})
	if err != nil {
		return nil, r.wrapStoreErr(name, err)
	}
	r.Emit(Event{Type: EventFreeze, Name: name, Actor: Actor{Identity: o.Identity, Holder: o.Holder}, Freeze: result, Replaced: replaced})
	return result, nil
}

// Unfreeze lifts the freeze of name. An expired or absent freeze gives an
// error wrapping ErrNotFound (an expired one is removed all the same).
func (r *Root) Unfreeze(ctx context.Context, name string, actor Actor) (*Freeze, error) {
	if err := lockfile.ValidateName(name); err != nil {
		return nil, err
	}
	var lifted *Freeze
	expired := false
	err := r.store.Update(ctx, store.Key{NS: store.Freezes, Name: name}, func(cur []byte, _ uint64) (store.Change, error) {
		if cur == nil {
			return store.Change{}, fmt.Errorf("%q is not frozen: %w", name, ErrNotFound)
		}
		f, err := r.decodeFreeze(name, cur)
		var corrupt *CorruptError
		switch {
		case errors.As(err, &corrupt):
			lifted = &Freeze{Name: name, Reason: "corrupt freeze file removed"}
			return store.Change{Op: store.Delete, Durable: true}, nil
		case err != nil:
			return store.Change{}, err
		}
		lifted = freezeFromRecord(f)
		expired = !r.now().Before(f.ExpiresAt.Time)
		return store.Change{Op: store.Delete, Durable: true}, nil
	})
	if err != nil {
		return nil, r.wrapStoreErr(name, err)
	}
	if expired {
		return nil, fmt.Errorf("%q is not frozen (its freeze had already expired): %w", name, ErrNotFound)
	}
	r.Emit(Event{Type: EventUnfreeze, Name: name, Actor: actor, Freeze: lifted})
	return lifted, nil
}

// activeFreeze returns the unexpired freeze of name, or nil. A corrupt
// freeze file fails safe: it blocks, with advice to lift it.
func (r *Root) activeFreeze(ctx context.Context, name string) (*Freeze, error) {
	data, err := r.store.Read(ctx, store.Key{NS: store.Freezes, Name: name})
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, r.wrapStoreErr(name, err)
	}
	f, err := r.decodeFreeze(name, data)
	if errorsAsUnsupported(err) {
		return nil, err // unfreeze would refuse it too; the message says to upgrade
	}
	if err != nil {
		return nil, fmt.Errorf("%w; lift it with: lokt unfreeze %s", err, name)
	}
	if !r.now().Before(f.ExpiresAt.Time) {
		return nil, nil
	}
	return freezeFromRecord(f), nil
}

// Freezes lists the unexpired freezes.
func (r *Root) Freezes(ctx context.Context) ([]*Freeze, error) {
	names, err := r.store.List(ctx, store.Freezes)
	if err != nil {
		return nil, err
	}
	var out []*Freeze
	for _, name := range names {
		if lockfile.ValidateName(name) != nil {
			continue
		}
		f, err := r.activeFreeze(ctx, name)
		if err != nil {
			return out, err
		}
		if f != nil {
			out = append(out, f)
		}
	}
	return out, nil
}

// GetFreeze returns the active freeze of name, or an error wrapping
// ErrNotFound.
func (r *Root) GetFreeze(ctx context.Context, name string) (*Freeze, error) {
	if err := lockfile.ValidateName(name); err != nil {
		return nil, err
	}
	f, err := r.activeFreeze(ctx, name)
	if err == nil && f == nil {
		err = fmt.Errorf("%q is not frozen: %w", name, ErrNotFound)
	}
	return f, err
}

func (r *Root) pruneFreezes(ctx context.Context, actor Actor) error {
	names, err := r.store.List(ctx, store.Freezes)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if lockfile.ValidateName(name) != nil {
			continue
		}
		var gone *Freeze
		err := r.store.Update(ctx, store.Key{NS: store.Freezes, Name: name}, func(cur []byte, _ uint64) (store.Change, error) {
			if cur == nil {
				return store.Change{}, nil
			}
			f, err := r.decodeFreeze(name, cur)
			if err != nil || r.now().Before(f.ExpiresAt.Time) {
				return store.Change{}, nil
			}
			gone = freezeFromRecord(f)
			return store.Change{Op: store.Delete, Durable: true}, nil
		})
		if err != nil {
			errs = append(errs, err)
		} else if gone != nil {
			r.Emit(Event{Type: EventAutoPrune, Name: name, Actor: actor, Freeze: gone, Reason: "freeze expired"})
		}
	}
	return errors.Join(errs...)
}

func (r *Root) decodeFreeze(name string, data []byte) (*lockfile.Freeze, error) {
	f, err := lockfile.DecodeFreeze(data)
	if err = r.recordErr(store.Freezes, name, err, func() string { return f.Name }); err != nil {
		return nil, err
	}
	return f, nil
}

func errorsAsUnsupported(err error) bool {
	var u *UnsupportedVersionError
	return errors.As(err, &u)
}
