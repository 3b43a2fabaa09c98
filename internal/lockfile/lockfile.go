// Package lockfile is the on-disk codec of protocol version 1: the lock and
// freeze records, their validation, and the rule for lock names. It knows
// nothing about files or processes; callers hand it bytes.
package lockfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Version is the protocol version this package reads and writes.
const Version = 1

// TimeLayout is RFC 3339 with a fixed nine-digit fraction, always UTC, so
// files sort and diff cleanly.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Time is a timestamp encoded with TimeLayout.
type Time struct{ time.Time }

// NewTime wraps t, converted to UTC.
func NewTime(t time.Time) Time { return Time{t.UTC()} }

// TimePtr returns a pointer to NewTime(t), for optional fields.
func TimePtr(t time.Time) *Time { v := NewTime(t); return &v }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(TimeLayout) + `"`), nil
}

// UnmarshalJSON accepts any RFC 3339 time, with or without a fraction.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	parsed, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	// An offset can move a four-digit year out of range once converted to
	// UTC ("9999-12-31T23:00:00-02:00"); such a time could not be written
	// back as RFC 3339, so it is not a valid record time.
	if y := parsed.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("time %q is outside years 0000-9999 in UTC", s)
	}
	t.Time = parsed.UTC()
	return nil
}

// Lock is one lock record: locks/NAME.json.
type Lock struct {
	Version  int    `json:"version"`
	Name     string `json:"name"`
	LockID   string `json:"lock_id"`
	Owner    string `json:"owner"`
	AgentID  string `json:"agent_id,omitempty"`
	Host     string `json:"host"`
	PID      int    `json:"pid"`
	PIDStart string `json:"pid_start"`
	// ChildPID/ChildStart name a co-holder (guard's child): the lock is only
	// stale by liveness once both the holder and the co-holder are gone.
	ChildPID   int    `json:"child_pid,omitempty"`
	ChildStart string `json:"child_start,omitempty"`
	// PIDNS names the holder's PID namespace: its pids mean nothing in
	// another one. Empty for records of lokt versions before it.
	PIDNS string `json:"pid_ns,omitempty"`
	// PGID is the process group of guard's command: the lock stays live
	// while any process of that group does.
	PGID int `json:"pgid,omitempty"`
	// Kept says the holder keeps evidence of its life in the store
	// (store.Keeper) under this record's lock_id.
	Kept       bool              `json:"kept,omitempty"`
	AcquiredAt Time              `json:"acquired_at"`
	RenewedAt  *Time             `json:"renewed_at,omitempty"`
	ExpiresAt  *Time             `json:"expires_at,omitempty"`
	TTLSec     int64             `json:"ttl_sec"`
	Token      uint64            `json:"token,omitempty"`
	Meta       map[string]string `json:"meta,omitempty"`
	// Extra keeps fields a newer lokt of the same protocol version added,
	// so that rewriting the record here (refresh, renew) does not drop them.
	Extra map[string]json.RawMessage `json:"-"`
}

// Freeze is one freeze record: freezes/NAME.json. Freezes always expire.
type Freeze struct {
	Version   int    `json:"version"`
	Name      string `json:"name"`
	Owner     string `json:"owner"`
	AgentID   string `json:"agent_id,omitempty"`
	Host      string `json:"host"`
	PID       int    `json:"pid"`
	Reason    string `json:"reason,omitempty"`
	FrozenAt  Time   `json:"frozen_at"`
	ExpiresAt Time   `json:"expires_at"`
	TTLSec    int64  `json:"ttl_sec"`
	// Extra keeps fields a newer lokt of the same protocol version added.
	Extra map[string]json.RawMessage `json:"-"`
}

// ErrCorrupt is wrapped by decode errors for bytes that are not a valid
// record: only outside damage can produce them, since writers replace files
// atomically.
var ErrCorrupt = errors.New("corrupt lock file")

// FutureVersionError reports a record written by a newer protocol. Such a
// file must be left exactly as it is.
type FutureVersionError struct{ Version int }

func (e *FutureVersionError) Error() string {
	return fmt.Sprintf("written by protocol version %d, but this lokt only knows version %d: upgrade lokt to read or change it (the file was left untouched)", e.Version, Version)
}

// DecodeLock parses and validates a lock record.
func DecodeLock(data []byte) (*Lock, error) {
	var l Lock
	if err := decode(data, &l); err != nil {
		return nil, err
	}
	if err := validateLock(&l); err != nil {
		return nil, err
	}
	return &l, nil
}

// validateLock checks what every holder record needs.
func validateLock(l *Lock) error {
	var missing []string
	if l.Name == "" {
		missing = append(missing, "name")
	}
	if l.LockID == "" {
		missing = append(missing, "lock_id")
	}
	if l.Host == "" {
		missing = append(missing, "host")
	}
	if l.AcquiredAt.IsZero() {
		missing = append(missing, "acquired_at")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %v", ErrCorrupt, missing)
	}
	if l.PID < 0 || l.ChildPID < 0 || l.PGID < 0 || l.TTLSec < 0 {
		return fmt.Errorf("%w: negative pid or ttl", ErrCorrupt)
	}
	if l.PID == 0 && l.ExpiresAt == nil {
		return fmt.Errorf("%w: no holder process and no expiry", ErrCorrupt)
	}
	if err := ValidateName(l.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// DecodeFreeze parses and validates a freeze record.
func DecodeFreeze(data []byte) (*Freeze, error) {
	var f Freeze
	if err := decode(data, &f); err != nil {
		return nil, err
	}
	if f.Name == "" || f.ExpiresAt.IsZero() || f.FrozenAt.IsZero() {
		return nil, fmt.Errorf("%w: missing name, frozen_at or expires_at", ErrCorrupt)
	}
	if err := ValidateName(f.Name); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return &f, nil
}

// decode checks the version before the rest, so a newer file is reported
// as newer even if its other fields no longer fit this version's types.
func decode(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%w: file is empty", ErrCorrupt)
	}
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch {
	case probe.Version == nil:
		return fmt.Errorf("%w: no version field", ErrCorrupt)
	case *probe.Version > Version:
		return &FutureVersionError{Version: *probe.Version}
	case *probe.Version < 1:
		return fmt.Errorf("%w: version %d", ErrCorrupt, *probe.Version)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	known := knownFields(v)
	for k, raw := range all {
		// encoding/json matches field names case-insensitively, so a key
		// that filled a known field must not also be kept as extra.
		if slices.ContainsFunc(known, func(n string) bool { return strings.EqualFold(n, k) }) {
			delete(all, k)
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		all[k] = compact.Bytes()
	}
	if len(all) == 0 {
		all = nil
	}
	switch r := v.(type) {
	case *Lock:
		r.Extra = all
	case *Freeze:
		r.Extra = all
	}
	return nil
}

// knownFields lists the JSON names of a record type's fields.
func knownFields(v any) []string {
	t := reflect.TypeOf(v).Elem()
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// Encode renders a record as indented JSON with a trailing newline,
// including the fields of a newer writer it kept in Extra.
func Encode(v any) ([]byte, error) {
	var extra map[string]json.RawMessage
	switch r := v.(type) {
	case *Lock:
		extra = r.Extra
	case *Freeze:
		extra = r.Extra
	}
	out := v
	if len(extra) > 0 {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		var all map[string]json.RawMessage
		if err := json.Unmarshal(b, &all); err != nil {
			return nil, err
		}
		for k, raw := range extra {
			if _, known := all[k]; !known {
				all[k] = raw
			}
		}
		out = all
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // records are read by tools, not browsers
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
