// Package audit is lokt's audit trail: audit.log in the lock root, one JSON
// object per line, appended by every lokt process and rotated by size. It
// records who held what, when, and who broke whose lock.
//
// Writers never coordinate beyond the kernel: each record is one write(2)
// on an O_APPEND descriptor, so lines from concurrent processes never
// interleave on a local filesystem. Rotation is the only step that needs
// agreement between processes; see Log.
package audit

import (
	"encoding/json"
	"io/fs"
	"os"
	"time"
	"unicode/utf8"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/lockfile"
)

// FileName is the audit log's name in the lock root. Rotated generations
// are FileName.1 (newest) to FileName.N (oldest).
const FileName = "audit.log"

// FileMode is the mode a new audit log is created with: the log names
// users, hosts and pids, and a forged line could mislead an investigation.
const FileMode = 0o600

// SharedFileMode is the mode a new audit log gets in a group-shared root
// (see CreateMode): every member of the group must append to it, and
// nobody else may read it.
const SharedFileMode = 0o660

// CreateMode is the mode a new audit log in the lock root dir is created
// with, before the umask: SharedFileMode when dir has the setgid bit (the
// documented set-up of a root shared by a group: new files then belong to
// the group), else FileMode. The mode of an existing log is never changed.
func CreateMode(dir string) fs.FileMode {
	if st, err := os.Stat(dir); err == nil && st.Mode()&fs.ModeSetgid != 0 {
		return SharedFileMode
	}
	return FileMode
}

// Record is one line of the audit log. Its JSON form is API (the contract's
// audit schema, protocol version 1); fields may be added, never renamed or
// removed.
//
// The first eight fields are on every line:
//
//	ts        RFC 3339 UTC with nine fraction digits, when the event happened
//	event     acquire, refresh, renew, release, deny, stale-break, auto-prune,
//	          force-break, corrupt-break, lost, freeze, unfreeze, freeze-deny
//	name      the lock or freeze name
//	lock_id   the acquisition concerned ("" for freeze events and
//	          corrupt-break): the new lock for acquire, refresh and renew; the
//	          removed one for release, lost and the breaks; the one in the way
//	          for deny. Joining on lock_id gives one acquisition's history:
//	          acquire, refresh/renew..., then release, lost or a break.
//	owner     the ACTOR's owner label: who did this
//	host      the actor's host
//	pid       the actor's pid (0 for a lock taken with --pid 0)
//	agent_id  the actor's $LOKT_AGENT_ID, "" when unset
//
// The rest appear only where they mean something:
//
//	ttl_sec     acquire, refresh, renew: the lock's TTL in seconds (0 = none);
//	            freeze events: the freeze's length
//	expires_at  acquire, refresh, renew: the lock's new expiry (absent when it
//	            has none); freeze events: when the freeze ends
//	token       acquire, refresh, renew: the lock's fencing token
//	reason      why: the judgement for breaks and auto-prune ("expired",
//	            "dead", "live" for a force-break of a live lock), the damage
//	            for corrupt-break, the cause for lost, the freeze's reason for
//	            freeze events
//	holder      release, deny, lost and every break: the lock's holder, which
//	            need not be the actor (see Holder)
//	frozen_by   unfreeze, freeze-deny and the auto-prune of a freeze: who
//	            froze the name (see Freezer); freeze: the other owner's
//	            freeze it replaced with --force (absent otherwise)
//	mode        lock events of a name held shared or in slots: "shared" or
//	            "slots" (absent for exclusive locks)
//	slots       with mode "slots": the name's slot count
type Record struct {
	TS      lockfile.Time `json:"ts"`
	Event   string        `json:"event"`
	Name    string        `json:"name"`
	LockID  string        `json:"lock_id"`
	Owner   string        `json:"owner"`
	Host    string        `json:"host"`
	PID     int           `json:"pid"`
	AgentID string        `json:"agent_id"`

	TTLSec    *int64         `json:"ttl_sec,omitempty"`
	ExpiresAt *lockfile.Time `json:"expires_at,omitempty"`
	Token     uint64         `json:"token,omitempty"`
	Reason    string         `json:"reason,omitempty"`
	Holder    *Holder        `json:"holder,omitempty"`
	FrozenBy  *Freezer       `json:"frozen_by,omitempty"`
	Mode      string         `json:"mode,omitempty"`
	Slots     int            `json:"slots,omitempty"`
}

// Holder is the lock an event concerns when it may belong to someone other
// than the actor: who held it, and the acquisition's own details.
type Holder struct {
	LockID     string         `json:"lock_id"`
	Owner      string         `json:"owner"`
	AgentID    string         `json:"agent_id,omitempty"`
	Host       string         `json:"host"`
	PID        int            `json:"pid"`
	AcquiredAt lockfile.Time  `json:"acquired_at"`
	ExpiresAt  *lockfile.Time `json:"expires_at,omitempty"`
	Token      uint64         `json:"token,omitempty"`
}

// Freezer is who froze a name, for events by someone else.
type Freezer struct {
	Owner     string        `json:"owner"`
	AgentID   string        `json:"agent_id,omitempty"`
	Host      string        `json:"host"`
	PID       int           `json:"pid"`
	FrozenAt  lockfile.Time `json:"frozen_at"`
	ExpiresAt lockfile.Time `json:"expires_at"`
	Reason    string        `json:"reason,omitempty"`
}

// maxReason bounds the reason field: it can carry a JSON decoder's error
// about arbitrary file content, and a line should stay small.
const maxReason = 1024

// FromEvent turns an engine event into its audit record.
func FromEvent(e lokt.Event) Record {
	ts := e.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	rec := Record{
		TS: lockfile.NewTime(ts), Event: string(e.Type), Name: e.Name,
		Owner: e.Actor.Owner, Host: e.Actor.Host, PID: e.Actor.PID, AgentID: e.Actor.AgentID,
		Reason: truncate(e.Reason, maxReason),
	}
	if l := e.Lock; l != nil {
		rec.LockID = l.LockID
		rec.Mode, rec.Slots = l.Mode, l.Slots
		switch e.Type {
		case lokt.EventAcquire, lokt.EventRefresh, lokt.EventRenew:
			// The actor is the holder here; the lock's terms are the news.
			ttl := int64(l.TTL / time.Second)
			rec.TTLSec = &ttl
			rec.ExpiresAt = timePtr(l.ExpiresAt)
			rec.Token = l.Token
		default:
			rec.Holder = &Holder{
				LockID: l.LockID, Owner: l.Owner, AgentID: l.AgentID, Host: l.Host, PID: l.PID,
				AcquiredAt: lockfile.NewTime(l.AcquiredAt), ExpiresAt: timePtr(l.ExpiresAt), Token: l.Token,
			}
		}
	}
	if f := e.Freeze; f != nil {
		// A freeze lifted because its file was corrupt has no times and no
		// owner: record only what is known.
		if !f.ExpiresAt.IsZero() {
			ttl := int64(f.ExpiresAt.Sub(f.FrozenAt).Round(time.Second) / time.Second)
			rec.TTLSec = &ttl
			rec.ExpiresAt = timePtr(&f.ExpiresAt)
		}
		if rec.Reason == "" {
			rec.Reason = truncate(f.Reason, maxReason)
		}
		if e.Type != lokt.EventFreeze && f.Owner != "" {
			rec.FrozenBy = freezer(f)
		}
	}
	if f := e.Replaced; f != nil {
		rec.FrozenBy = freezer(f)
	}
	return rec
}

func freezer(f *lokt.Freeze) *Freezer {
	return &Freezer{
		Owner: f.Owner, AgentID: f.AgentID, Host: f.Host, PID: f.PID,
		FrozenAt: lockfile.NewTime(f.FrozenAt), ExpiresAt: lockfile.NewTime(f.ExpiresAt),
		Reason: truncate(f.Reason, maxReason),
	}
}

// Marshal renders rec as one log line, newline included.
func (rec *Record) Marshal() ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func timePtr(t *time.Time) *lockfile.Time {
	if t == nil {
		return nil
	}
	return lockfile.TimePtr(*t)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
