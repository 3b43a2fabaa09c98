// Package lokt is a lock coordinator for processes that share a machine or a
// filesystem. A Root is a directory of named locks; each lock has one holder
// (a process, identified by host, pid and start time) and an owner label.
//
// Every state change is a compare-and-swap on one record of the Root's
// store, so two contenders never both succeed. A lock is stale when its TTL
// has passed or its holder on this host has exited; acquiring breaks a
// stale lock in the same compare-and-swap step that takes it.
//
// lokt is cooperative coordination: it does not stop a process that ignores
// it from doing the work, and it is not a consensus protocol.
package lokt

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/lokt-dev/lokt/internal/filestore"
	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/internal/rootdir"
	"github.com/lokt-dev/lokt/store"
)

// Root is an opened lock root. Its methods are safe for concurrent use.
type Root struct {
	store    store.Store
	dir      string
	host     string
	ns       string // PID namespace, part of every local holder's identity
	now      func() time.Time
	liveness func(pid int, start string) proc.Liveness
	// groupLiveness answers for a process group, given its leader's start.
	groupLiveness func(pgid int, leaderStart string) proc.Liveness
	observe       func(Event)
}

// Option configures Open.
type Option func(*Root)

// WithObserver makes the Root report every state change (and every denial)
// to fn, after the change is stored. fn must not block for long; the audit
// log is its main user.
func WithObserver(fn func(Event)) Option { return func(r *Root) { r.observe = fn } }

// WithClock replaces the wall clock, for tests.
func WithClock(now func() time.Time) Option { return func(r *Root) { r.now = now } }

// WithStore makes the Root use another backend instead of files in dir.
func WithStore(s store.Store) Option { return func(r *Root) { r.store = s } }

// withLiveness replaces the process check, for tests of staleness rules.
func withLiveness(fn func(int, string) proc.Liveness) Option {
	return func(r *Root) { r.liveness = fn }
}

// withGroupLiveness replaces the process-group check, for tests.
func withGroupLiveness(fn func(int, string) proc.Liveness) Option {
	return func(r *Root) { r.groupLiveness = fn }
}

// Open opens the lock root in dir, creating it and its subdirectories if
// they do not exist.
func Open(dir string, opts ...Option) (*Root, error) {
	r := &Root{dir: dir, host: proc.Hostname(), ns: proc.Namespace(), now: time.Now, liveness: proc.Check, groupLiveness: proc.Group}
	for _, o := range opts {
		o(r)
	}
	if r.store == nil {
		fs, err := filestore.Open(dir)
		if err != nil {
			return nil, err
		}
		r.store = fs
		r.dir = fs.Root()
	}
	return r, nil
}

// Dir is the lock root's location.
func (r *Root) Dir() string { return r.dir }

// Host is the host name this Root judges local holders by.
func (r *Root) Host() string { return r.host }

// Location is where a lock root was found and why.
type Location struct {
	Dir    string `json:"root"`
	Source string `json:"root_source"`
	Reason string `json:"root_reason"`
}

// Locate chooses the lock root for a process working in cwd: $LOKT_ROOT (which
// must be absolute), else lokt/ in the git common directory, else the nearest
// .lokt/ walking up, else the user's machine-wide root in the platform's
// per-user state directory (Source "user"), never the current directory. A
// .lokt symlink on the way up is an error. getenv is usually os.Getenv. It
// creates nothing.
func Locate(cwd string, getenv func(string) string) (Location, error) {
	res, err := rootdir.Find(cwd, getenv)
	if err != nil {
		return Location{}, err
	}
	return Location{Dir: res.Dir, Source: string(res.Source), Reason: res.Reason}, nil
}

// Identity is the label a caller acts under. It decides who may unlock and
// what the audit log shows, never who holds a lock.
type Identity struct {
	Owner   string
	AgentID string
}

// DefaultIdentity is $LOKT_OWNER (else the OS user name) and $LOKT_AGENT_ID.
func DefaultIdentity(getenv func(string) string) Identity {
	owner := getenv("LOKT_OWNER")
	if owner == "" {
		if name, ok := proc.UserName(os.Getuid()); ok {
			owner = name
		} else if u, err := user.Current(); err == nil && u.Username != "" {
			owner = u.Username
		} else if v := getenv("USER"); v != "" {
			owner = v
		} else {
			owner = "uid-" + strconv.Itoa(os.Getuid())
		}
	}
	return Identity{Owner: owner, AgentID: getenv("LOKT_AGENT_ID")}
}

// Holder identifies the process a lock belongs to: host, PID namespace, pid
// and start time. A Holder with PID 0 is no process: such a lock lives until
// it is released or its TTL ends.
type Holder struct {
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	Start string `json:"pid_start"`
	NS    string `json:"pid_ns,omitempty"`
}

// ProcessHolder returns the Holder for a running process on this host.
func ProcessHolder(pid int) (Holder, error) {
	if pid == 0 {
		return Holder{Host: proc.Hostname()}, nil
	}
	start, err := proc.StartToken(pid)
	if errors.Is(err, proc.ErrNoProcess) {
		return Holder{}, &NoProcessError{PID: pid}
	}
	// Any other error (a /proc of another namespace, hidepid) leaves the
	// start unknown: such a holder is never judged dead by pid.
	return Holder{Host: proc.Hostname(), PID: pid, Start: start, NS: proc.Namespace()}, nil
}

// Self is the Holder for the calling process.
func Self() Holder {
	h, err := ProcessHolder(os.Getpid())
	if err != nil {
		return Holder{Host: proc.Hostname(), PID: os.Getpid(), NS: proc.Namespace()}
	}
	return h
}

// newLockID returns 128 random bits in hex. A lock_id must be unique, not
// secret (it is in the record for anyone to read), so the runtime's
// ChaCha8 generator, seeded from the OS at start, is enough; it spares
// every run the start-up cost of crypto/rand's FIPS machinery.
func newLockID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64()) //nolint:gosec // uniqueness, not secrecy
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64()) //nolint:gosec // uniqueness, not secrecy
	return hex.EncodeToString(b[:])
}
