package lockfile

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MultiVersion is the protocol version of records with more than one holder
// (slots, shared holders) or with waiters in line. A binary that knows only
// Version refuses such a record untouched (FutureVersionError), so it can
// never judge a name that has several holders as having one.
const MultiVersion = 2

// MaxSlots is the largest slot count a name may have.
const MaxSlots = 1024

// The modes of a multi-holder record.
const (
	ModeExclusive = "exclusive" // one holder (the record also has waiters)
	ModeShared    = "shared"    // any number of shared holders
	ModeSlots     = "slots"     // at most Slots holders
)

// Multi is a lock record of protocol version 2: locks/NAME.json when the name
// has shared or slot holders, or waiters in line. Every holder entry is a
// whole Lock (its Version is MultiVersion), so it is judged by exactly the
// rules of a single holder.
type Multi struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	Mode    string `json:"mode"`
	// Slots is the slot count of a ModeSlots name, 0 otherwise.
	Slots   int      `json:"slots,omitempty"`
	Holders []*Lock  `json:"holders"`
	Waiters []Waiter `json:"waiters,omitempty"`
}

// Waiter is a process waiting in line for a name. It is dropped from the
// line as soon as its process is gone (or, for a process lokt cannot check,
// when ExpiresAt passes without the waiter renewing it).
type Waiter struct {
	WaitID   string `json:"wait_id"`
	Mode     string `json:"mode"`
	Slots    int    `json:"slots,omitempty"`
	Owner    string `json:"owner"`
	AgentID  string `json:"agent_id,omitempty"`
	Host     string `json:"host"`
	PID      int    `json:"pid"`
	PIDStart string `json:"pid_start"`
	PIDNS    string `json:"pid_ns,omitempty"`
	// Holder is the pid the lock will be held for, when not the waiter
	// itself (lokt lock waits on behalf of its calling shell).
	HolderPID int  `json:"holder_pid,omitempty"`
	Since     Time `json:"since"`
	// ExpiresAt is absent from a description a waiter publishes in the
	// store (DecodeWaiter): the store, not a renewal, says it is there.
	ExpiresAt Time `json:"expires_at,omitzero"`
	// LockID and Kept name the holder evidence the waiter already keeps
	// for the acquisition it waits to make (guard does): while it is held
	// the waiter is there, wherever it runs. Optional: a reader that does
	// not know them judges the waiter by its pid or ExpiresAt.
	LockID string `json:"lock_id,omitempty"`
	Kept   bool   `json:"kept,omitempty"`
}

// DecodeWaiter parses and validates a waiter's description published in
// the store beside a version 1 record (a waiter of a plain exclusive lock).
func DecodeWaiter(data []byte) (*Waiter, error) {
	var w Waiter
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := checkWaiter(&w); err != nil {
		return nil, err
	}
	return &w, nil
}

func checkWaiter(w *Waiter) error {
	if w.WaitID == "" || w.Host == "" || w.PID < 0 || w.Since.IsZero() {
		return fmt.Errorf("%w: incomplete waiter", ErrCorrupt)
	}
	if w.Mode != ModeExclusive && w.Mode != ModeShared && w.Mode != ModeSlots {
		return fmt.Errorf("%w: waiter mode %q", ErrCorrupt, w.Mode)
	}
	return nil
}

// DecodeMulti parses and validates a version 2 record.
func DecodeMulti(data []byte) (*Multi, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: file is empty", ErrCorrupt)
	}
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch {
	case probe.Version == nil:
		return nil, fmt.Errorf("%w: no version field", ErrCorrupt)
	case *probe.Version > MultiVersion:
		return nil, &FutureVersionError{Version: *probe.Version}
	case *probe.Version != MultiVersion:
		return nil, fmt.Errorf("%w: version %d is not a multi-holder record", ErrCorrupt, *probe.Version)
	}
	var m Multi
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := ValidateName(m.Name); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch m.Mode {
	case ModeExclusive:
		if len(m.Holders) > 1 {
			return nil, fmt.Errorf("%w: %d exclusive holders", ErrCorrupt, len(m.Holders))
		}
	case ModeShared:
	case ModeSlots:
		if m.Slots < 1 || m.Slots > MaxSlots || len(m.Holders) > m.Slots {
			return nil, fmt.Errorf("%w: %d holders of %d slots", ErrCorrupt, len(m.Holders), m.Slots)
		}
	default:
		return nil, fmt.Errorf("%w: unknown mode %q", ErrCorrupt, m.Mode)
	}
	if len(m.Holders) == 0 && len(m.Waiters) == 0 {
		return nil, fmt.Errorf("%w: no holders and no waiters", ErrCorrupt)
	}
	for _, h := range m.Holders {
		if h == nil {
			return nil, fmt.Errorf("%w: null holder", ErrCorrupt)
		}
		if h.Name != m.Name {
			return nil, fmt.Errorf("%w: holder of %q in record %q", ErrCorrupt, h.Name, m.Name)
		}
		if err := validateLock(h); err != nil {
			return nil, err
		}
	}
	for i := range m.Waiters {
		if m.Waiters[i].ExpiresAt.IsZero() {
			return nil, fmt.Errorf("%w: incomplete waiter", ErrCorrupt)
		}
		if err := checkWaiter(&m.Waiters[i]); err != nil {
			return nil, err
		}
	}
	return &m, nil
}
