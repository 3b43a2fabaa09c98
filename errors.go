package lokt

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound is wrapped when a lock or freeze does not exist.
var ErrNotFound = errors.New("not found")

// ErrLost is wrapped when a renewal or release finds the lock no longer
// carries the caller's lock_id: someone force-broke it (or it went stale
// and was taken).
var ErrLost = errors.New("lock lost")

// HeldError reports that another holder has the lock.
type HeldError struct {
	Lock *Lock
	// Remote is set when the holder is on another host or in another PID
	// namespace: lokt cannot check that process, only the lock's TTL (and
	// the evidence the holder keeps in the store). Foreign says which.
	Remote  bool
	Foreign string
	// Leased is set when the record ends with its holder's lease (the
	// holder keeps it only while it renews the lease).
	Leased bool
	// Now is when the lock was judged, for the ages in the message.
	Now time.Time

	// Multi is set when the name has shared or slot holders or a line:
	// Lock is then its first holder (or first waiter when nobody holds it).
	Multi   bool
	Mode    string
	Slots   int
	Holders int
	// Ahead is how many wait in line before the caller; Position is the
	// caller's own place (1 = head), 0 when it has none.
	Ahead    int
	Position int
}

func (e *HeldError) Error() string {
	if e.Multi {
		return fmt.Sprintf("lock %q is not available: %s", e.Lock.Name, describeHolders(e))
	}
	return fmt.Sprintf("lock %q is held by %s", e.Lock.Name, describeHolder(e.Lock, e.Now, e.Foreign, e.Leased))
}

// FrozenError reports that a freeze blocks the name.
type FrozenError struct {
	Freeze *Freeze
	Now    time.Time
}

func (e *FrozenError) Error() string {
	f := e.Freeze
	var b strings.Builder
	fmt.Fprintf(&b, "%q is frozen by %s@%s until %s (%s left)", f.Name, f.Owner, f.Host,
		f.ExpiresAt.Format(time.RFC3339), roundDur(f.ExpiresAt.Sub(e.Now)))
	if f.Reason != "" {
		fmt.Fprintf(&b, ": %s", f.Reason)
	}
	return b.String()
}

// NotOwnerError reports an unlock by someone whose owner label differs.
type NotOwnerError struct {
	Lock   *Lock
	Caller string
	// State is the lock's state: a stale lock may be broken by anyone.
	State State
	Now   time.Time
}

func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("lock %q belongs to owner %q, not %q (held by %s)", e.Lock.Name, e.Lock.Owner, e.Caller, describeHolder(e.Lock, e.Now, "", false))
}

// FreezeOwnerError reports a freeze that would replace another owner's
// unexpired freeze (and its reason) without FreezeOptions.Force.
type FreezeOwnerError struct {
	Freeze *Freeze // the freeze in place
	Caller string  // the caller's owner label
	Now    time.Time
}

func (e *FreezeOwnerError) Error() string {
	return fmt.Sprintf("not replacing the freeze of %s: it belongs to owner %q, not %q (%s)", e.Freeze.Name, e.Freeze.Owner, e.Caller,
		strings.TrimPrefix((&FrozenError{Freeze: e.Freeze, Now: e.Now}).Error(), fmt.Sprintf("%q is ", e.Freeze.Name)))
}

// TimeoutError reports that a wait ended before the lock became free. It
// unwraps to what was blocking at the end (a *HeldError or *FrozenError).
type TimeoutError struct {
	Waited  time.Duration
	Blocker error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("gave up after waiting %s: %v", roundDur(e.Waited), e.Blocker)
}

func (e *TimeoutError) Unwrap() error { return e.Blocker }

// CorruptError reports a record that is not valid JSON of the protocol.
type CorruptError struct {
	Name string
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s is corrupt (%v)", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// UnsupportedVersionError reports a record from a newer protocol. lokt never
// rewrites or deletes such a file.
type UnsupportedVersionError struct {
	Path    string
	Version int
}

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("%s was written by protocol version %d but this lokt knows only versions 1 and 2; upgrade lokt (the file was left untouched)", e.Path, e.Version)
}

// NoProcessError reports a --pid that names no running process.
type NoProcessError struct{ PID int }

func (e *NoProcessError) Error() string {
	return fmt.Sprintf("no running process has pid %d", e.PID)
}

func describeHolder(l *Lock, now time.Time, foreign string, leased bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%s", l.Owner, l.Host)
	if l.AgentID != "" {
		fmt.Fprintf(&b, " (agent %s)", l.AgentID)
	}
	if l.PID != 0 {
		fmt.Fprintf(&b, " pid %d", l.PID)
	} else {
		b.WriteString(" (no process)")
	}
	fmt.Fprintf(&b, " since %s (%s ago)", l.AcquiredAt.Local().Format(time.RFC3339), roundDur(now.Sub(l.AcquiredAt)))
	switch {
	case l.ExpiresAt != nil:
		fmt.Fprintf(&b, ", expires %s (in %s)", l.ExpiresAt.Local().Format(time.RFC3339), roundDur(l.ExpiresAt.Sub(now)))
	case leased && foreign != "":
		fmt.Fprintf(&b, ", no expiry: its holder is %s and keeps it on a lease: held until it releases it or stops renewing the lease", foreign)
	case leased:
		b.WriteString(", no expiry: its holder keeps it on a lease: held until it releases it or stops renewing the lease")
	case foreign != "":
		fmt.Fprintf(&b, ", no expiry: its holder is %s, which lokt cannot check, so it is held until unlocked", foreign)
	default:
		b.WriteString(", no expiry: held while the holder process lives")
	}
	return b.String()
}

// roundDur shortens a duration for people: 1m23s, not 1m23.456789s.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return -roundDur(-d)
	case d < time.Second:
		return d.Round(time.Millisecond)
	default:
		return d.Round(time.Second)
	}
}
