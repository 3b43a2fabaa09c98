package lokt

// Waiters of plain exclusive locks.
//
// A name held exclusively keeps its version 1 record while others wait
// for it (so every lokt can still read it): its line is the store's Queue,
// not the record. For status to list those waiters anyway, each one
// publishes a description of itself in the store for as long as it waits
// (store.Announcer; for files a held file beside the record, on etcd a key
// on a lease). It is written only once the first attempt has found the
// name held, so an uncontended acquisition never pays for it.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/store"
)

// announce publishes the caller as a waiter of name until the returned
// function is called. Best effort: a store that cannot (or a failed write)
// only means status does not list this waiter.
func (r *Root) announce(name string, o *AcquireOptions, since time.Time) func() {
	a, ok := r.store.(store.Announcer)
	if !ok || o.waitID == "" {
		return func() {}
	}
	self := Self()
	w := lockfile.Waiter{
		WaitID: o.waitID, Mode: ModeExclusive, Owner: o.Owner, AgentID: o.AgentID,
		Host: self.Host, PID: self.PID, PIDStart: self.Start, PIDNS: self.NS,
		Since: lockfile.NewTime(since),
	}
	if o.Holder.PID != self.PID {
		w.HolderPID = o.Holder.PID
	}
	data, err := json.Marshal(&w)
	if err != nil {
		return func() {}
	}
	withdraw, err := a.Announce(store.Key{NS: store.Locks, Name: name}, o.waitID, data)
	if err != nil {
		return func() {}
	}
	return withdraw
}

// announcedWaiters lists the waiters that announced themselves for name,
// in the store's line order. The store drops a waiter that died (its kernel
// lock or lease is gone); one on this host whose process is provably gone
// is dropped here too, since a lease outlives its process by up to its
// TTL. A description that cannot be parsed is skipped: it decides nothing.
func (r *Root) announcedWaiters(ctx context.Context, name string) []Waiter {
	a, ok := r.store.(store.Announcer)
	if !ok {
		return nil
	}
	infos, err := a.Announced(ctx, store.Key{NS: store.Locks, Name: name})
	if err != nil {
		return nil
	}
	var out []Waiter
	for _, info := range infos {
		w, err := lockfile.DecodeWaiter(info)
		if err != nil {
			continue
		}
		l := &lockfile.Lock{Host: w.Host, PID: w.PID, PIDNS: w.PIDNS}
		if w.PID != 0 && r.foreign(l) == "" && r.liveness(w.PID, w.PIDStart) == proc.Dead {
			continue
		}
		out = append(out, Waiter{
			WaitID: w.WaitID, Mode: w.Mode, Slots: w.Slots, Owner: w.Owner, AgentID: w.AgentID,
			Holder:    Holder{Host: w.Host, PID: w.PID, Start: w.PIDStart, NS: w.PIDNS},
			HolderPID: w.HolderPID, Since: w.Since.Time, Position: len(out) + 1,
		})
	}
	return out
}
