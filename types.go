package lokt

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/store"
)

// Lock is a lock as stored, in the field names of the protocol.
type Lock struct {
	Name    string `json:"name"`
	LockID  string `json:"lock_id"`
	Owner   string `json:"owner"`
	AgentID string `json:"agent_id,omitempty"`
	Holder
	// Child is a co-holder (guard's command); zero PID when there is none.
	ChildPID   int    `json:"child_pid,omitempty"`
	ChildStart string `json:"child_start,omitempty"`
	// PGID is the process group of guard's command, which keeps the lock
	// live while any of its processes does.
	PGID int `json:"pgid,omitempty"`
	// Kept says the holder keeps evidence of its life in the store (a
	// kernel lock its process tree inherits, or a lease).
	Kept       bool              `json:"kept,omitempty"`
	AcquiredAt time.Time         `json:"acquired_at"`
	RenewedAt  *time.Time        `json:"renewed_at,omitempty"`
	ExpiresAt  *time.Time        `json:"expires_at,omitempty"`
	TTL        time.Duration     `json:"-"`
	Token      uint64            `json:"token,omitempty"`
	Meta       map[string]string `json:"meta,omitempty"`
	// Mode is "shared" or "slots" for a holder of a multi-holder name,
	// empty for an exclusive lock; Slots is the name's slot count.
	Mode  string `json:"mode,omitempty"`
	Slots int    `json:"slots,omitempty"`
}

// Freeze blocks new acquisitions of a name until it expires.
type Freeze struct {
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	AgentID   string    `json:"agent_id,omitempty"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Reason    string    `json:"reason,omitempty"`
	FrozenAt  time.Time `json:"frozen_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// State is the judgement of a lock record at one moment.
type State string

// The states a lock can be in. Only StateLive blocks an acquirer.
const (
	StateLive        State = "live"        // held by a running holder, TTL not passed
	StateExpired     State = "expired"     // TTL passed
	StateDead        State = "dead"        // holder, its command's process tree and its evidence are gone
	StateCorrupt     State = "corrupt"     // the file is not a valid record (outside damage)
	StateUnsupported State = "unsupported" // written by a newer protocol version
	// StateWaiting: nobody holds the name, but processes wait in line for
	// it (the moment between a holder leaving and the head taking over).
	StateWaiting State = "waiting"
)

// Stale reports whether an acquirer may break a lock in this state.
func (s State) Stale() bool { return s == StateExpired || s == StateDead || s == StateCorrupt }

func fromRecord(l *lockfile.Lock) *Lock {
	out := &Lock{
		Name: l.Name, LockID: l.LockID, Owner: l.Owner, AgentID: l.AgentID,
		Holder:   Holder{Host: l.Host, PID: l.PID, Start: l.PIDStart, NS: l.PIDNS},
		ChildPID: l.ChildPID, ChildStart: l.ChildStart, PGID: l.PGID, Kept: l.Kept,
		AcquiredAt: l.AcquiredAt.Time, TTL: time.Duration(l.TTLSec) * time.Second,
		Token: l.Token, Meta: l.Meta,
	}
	if l.RenewedAt != nil {
		t := l.RenewedAt.Time
		out.RenewedAt = &t
	}
	if l.ExpiresAt != nil {
		t := l.ExpiresAt.Time
		out.ExpiresAt = &t
	}
	return out
}

func freezeFromRecord(f *lockfile.Freeze) *Freeze {
	return &Freeze{
		Name: f.Name, Owner: f.Owner, AgentID: f.AgentID, Host: f.Host, PID: f.PID,
		Reason: f.Reason, FrozenAt: f.FrozenAt.Time, ExpiresAt: f.ExpiresAt.Time,
	}
}

// judge decides a record's state. Expiry is checked first because it holds
// everywhere. Then the evidence the holder keeps in the store: while the
// kernel (or the cluster) says it is held, the lock is live whatever its
// pids say; where that evidence is a lease (store.Leaser), its end is the
// holder's end. Pids are only asked about for holders on this host and in this
// PID namespace, since anywhere else they name other processes: the holder,
// its command (guard's child) and that command's process group must all be
// gone. A process lokt cannot inspect counts as alive: lokt never breaks a
// lock it has not proved stale.
func (r *Root) judge(ctx context.Context, l *lockfile.Lock, now time.Time) State {
	if l.ExpiresAt != nil && !now.Before(l.ExpiresAt.Time) {
		return StateExpired
	}
	t := treeOf(l)
	if l.Kept {
		if k, ok := r.store.(store.Keeper); ok {
			if held, err := k.Alive(ctx, store.Key{NS: store.Locks, Name: l.Name}, l.LockID); err != nil || held {
				return StateLive
			}
			if _, ok := k.(store.Leaser); ok {
				// A lease that ended: the holder was told it lost the
				// lock, and a record of its own would be gone with it.
				return StateDead
			}
		}
		t = r.notedTree(ctx, l, t)
	}
	if l.PID == 0 || r.foreign(l) != "" {
		return StateLive
	}
	if r.liveness(l.PID, l.PIDStart) != proc.Dead {
		return StateLive
	}
	if t.ChildPID > 0 && r.liveness(t.ChildPID, t.ChildStart) != proc.Dead {
		return StateLive
	}
	if t.PGID > 0 && r.groupLiveness(t.PGID, t.ChildStart) != proc.Dead {
		return StateLive
	}
	return StateDead
}

// tree is the command a holder runs and its process group, recorded in the
// record or noted with the holder's evidence.
type tree struct {
	ChildPID   int    `json:"child_pid"`
	ChildStart string `json:"child_start"`
	PGID       int    `json:"pgid"`
}

func treeOf(l *lockfile.Lock) tree {
	return tree{ChildPID: l.ChildPID, ChildStart: l.ChildStart, PGID: l.PGID}
}

// notedTree completes t from the note on the record's evidence, where guard
// writes its command's tree (store.Noter). A note that cannot be read or
// parsed adds nothing.
func (r *Root) notedTree(ctx context.Context, l *lockfile.Lock, t tree) tree {
	nr, ok := r.store.(store.NoteReader)
	if !ok || t.ChildPID != 0 || t.PGID != 0 {
		return t
	}
	data, err := nr.ReadNote(ctx, store.Key{NS: store.Locks, Name: l.Name}, l.LockID)
	if err != nil || len(data) == 0 {
		return t
	}
	var noted tree
	if json.Unmarshal(data, &noted) != nil || noted.ChildPID < 0 || noted.PGID < 0 {
		return t
	}
	return noted
}

// foreign says why a holder's pids cannot be checked here: "" when they
// can. A record without a namespace predates namespaces in records and is
// taken as this one's.
func (r *Root) foreign(l *lockfile.Lock) string {
	switch {
	case l.Host != r.host:
		return "on another host"
	case l.PIDNS != "" && l.PIDNS != r.ns:
		return "in another PID namespace"
	}
	return ""
}

// leased says whether l ends with its holder's lease (store.Leaser): then
// even a holder lokt cannot check keeps it only while it renews the lease.
func (r *Root) leased(l *lockfile.Lock) bool {
	_, ok := r.store.(store.Leaser)
	return ok && l.Kept
}

// sameHolder: a lock is refreshed, not denied, only for the very process
// that holds it. Owner labels play no part, and no-process locks (PID 0)
// have no holder to match.
func sameHolder(l *lockfile.Lock, h Holder) bool {
	return h.PID != 0 && l.PID == h.PID && l.Host == h.Host && l.PIDStart == h.Start && l.PIDNS == h.NS
}
