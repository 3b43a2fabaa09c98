// Package store defines the storage contract behind a lokt root. The file
// backend (the default) implements it with a kernel lock per name and atomic
// renames; a backend on a consensus store would implement Update as a
// transaction conditional on the key's revision. Everything about holders,
// staleness and permissions stays in package lokt, above this interface.
package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"
)

// Namespace separates record kinds; a lock and a freeze of one name never
// share storage.
type Namespace string

// The namespaces lokt uses.
const (
	Locks   Namespace = "locks"
	Freezes Namespace = "freezes"
)

// ErrNotExist is returned by Read for a record that does not exist.
var ErrNotExist = fs.ErrNotExist

// Op says what Update should do with the record after its callback returns.
type Op int

// The operations a callback can ask for.
const (
	Keep   Op = iota // leave the record as it is
	Put              // replace (or create) it with Change.Data
	Delete           // remove it
)

// Change is the outcome of an Update callback.
type Change struct {
	Op   Op
	Data []byte
	// Seq, when greater than the stored sequence of the name, replaces it.
	// The sequence outlives the record itself, which is what makes fencing
	// tokens strictly increasing across acquisitions.
	Seq uint64
	// Durable asks that the change survive a crash of this host before
	// Update returns (for files: fsync). Readers see a change atomically
	// either way. The engine leaves it off for locks held by a process on
	// this host, since such a crash ends the holder and so the lock.
	Durable bool
	// TTL, when positive, is how long a Put record is meaningful: a
	// backend with leases attaches the record to one of at least this
	// length, so it vanishes by itself once nobody renews it. The engine
	// still judges expiry from the record; the file backend ignores TTL.
	TTL time.Duration
	// Kept, when set, is the holder evidence (from this store's Keeper)
	// that a Put record belongs to: a backend with leases attaches the
	// record to that lease instead, so the record ends when the evidence
	// does. Backends whose evidence lives beside the record ignore it.
	Kept Kept
}

// Key names one record.
type Key struct {
	NS   Namespace
	Name string
}

// Store is a namespace of small records with compare-and-swap updates.
//
// Update must run fn with exclusive access to the record: no other Update of
// the same key may read or write between the moment fn sees cur and the
// moment its Change is stored. cur is nil when the record does not exist.
// If fn returns an error nothing is written and Update returns that error.
// fn may run more than once (a backend with optimistic transactions retries
// on conflict), so it must compute its result from cur (and the reads below)
// alone.
//
// Updates of all keys that share a Name (a lock and its freeze) form one
// critical section: fn may Read another key of the same Name and sees its
// latest committed state, which cannot change before fn's Change is stored.
// That is what orders a freeze against acquisitions of its name.
// A record that cannot be read safely (a symlink, a directory) makes Update
// fail without calling fn. Readers must only ever see whole records.
type Store interface {
	Update(ctx context.Context, key Key, fn func(cur []byte, seq uint64) (Change, error)) error
	// Read returns the record's bytes, or an error wrapping ErrNotExist.
	Read(ctx context.Context, key Key) ([]byte, error)
	// List returns the names of the records in ns, sorted.
	List(ctx context.Context, ns Namespace) ([]string, error)
	// Watch returns a channel that receives a value (coalesced) whenever one
	// of keys is removed, until ctx ends: removal is the only change that
	// can free a lock or lift a freeze. Backends that cannot watch return a
	// nil channel; callers then fall back to polling.
	Watch(ctx context.Context, keys ...Key) (<-chan struct{}, error)
	// Location describes where the records live, for messages.
	Location() string
}

// ErrUnavailable is wrapped by every error that means the store could not
// be reached or could not commit (no quorum, timeout, refused connection).
// Such an operation changed nothing that the caller may rely on: an Update
// that fails this way either did not commit or will be seen as not having
// committed by the next read of the same key, never half of it.
var ErrUnavailable = errors.New("lock store unavailable")

// UnavailableError says which store could not be used and why.
type UnavailableError struct {
	Where string // the store's endpoints, for messages
	Op    string // what was being done, e.g. "read locks/deploy"
	Err   error  // the cause
}

func (e *UnavailableError) Error() string {
	return e.Op + ": " + e.Where + " is unavailable: " + e.Err.Error()
}

// Unwrap makes the error match ErrUnavailable and its cause.
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// MultiHolder is implemented by stores that keep records of protocol
// version 2 (slots, shared holders, waiters in line): the file and the etcd
// backend. On other stores the engine refuses slots and shared holds
// instead of guessing how their evidence would map onto several holders.
//
// The engine never asks such a store to tie a version 2 record to one
// holder's evidence (Change.Kept is nil for it, and TTL 0): the record
// outlives any one holder, and each holder entry is judged by its own
// evidence (Keeper.Alive).
type MultiHolder interface {
	MultiHolder()
}

// ChangeWatcher is implemented by stores that can report every change of
// a record, not only its removal: a slot freed in a multi-holder record is
// a rewrite, and `lokt status --watch` redraws on every change. Waiters on
// plain exclusive locks keep using Watch, which wakes them only when the
// record is removed.
type ChangeWatcher interface {
	// WatchChanges is Watch for every write or removal of one of keys. A
	// key with an empty Name stands for every record of its namespace.
	WatchChanges(ctx context.Context, keys ...Key) (<-chan struct{}, error)
}

// ErrUnsafe is wrapped when a record's storage is not something the backend
// will touch (for files: a symlink, a directory, a device).
var ErrUnsafe = errors.New("unsafe record path")

// Queue is implemented by stores that can line waiters up for a key, so
// that only the first in line watches the record and the others sleep until
// their turn instead of being woken by every release they cannot win. The
// engine uses it when the store has it; correctness never depends on it
// (the compare-and-swap in Update decides who holds a lock).
type Queue interface {
	// Line puts the caller in the waiting line for key. first is closed
	// once the caller is at the head; leave takes the caller out of the
	// line, wherever it is, and must be called exactly once. A caller that
	// leaves before its turn may keep a place in the line until that turn
	// comes (it is then passed on at once).
	Line(key Key) (first <-chan struct{}, leave func(), err error)
}

// Announcer is implemented by stores where a waiter can say who it is for
// as long as it waits, so that status can list the waiters of a plain
// exclusive lock: their line is the store's Queue (or nothing), not the
// record, which stays of protocol version 1. A description lasts until its
// waiter withdraws it or dies (for files: a kernel lock the waiter holds;
// for a consensus store: a lease). Only waiters pay for it, never an
// uncontended acquisition.
type Announcer interface {
	// Announce publishes info (small, opaque to the store) as waiter id of
	// key. withdraw removes it and must be called once; it is safe to call
	// from any goroutine.
	Announce(key Key, id string, info []byte) (withdraw func(), err error)
	// Announced returns the descriptions of the waiters of key in the
	// order they arrived, as far as the store can tell. It never returns
	// one whose waiter is provably gone.
	Announced(ctx context.Context, key Key) ([][]byte, error)
}

// Keeper is implemented by stores that can keep evidence that a holder is
// alive without asking about pids: the file backend uses a kernel lock on a
// file per acquisition, which the holder's whole process tree inherits; a
// consensus store would use a lease. The engine judges a record whose
// evidence is gone as stale at once, and a record whose evidence is held as
// live, whatever its pids say.
type Keeper interface {
	// Keep creates and takes the evidence for acquisition id of key,
	// before the record that names it is written.
	Keep(ctx context.Context, key Key, id string) (Kept, error)
	// Alive reports whether anyone still holds the evidence of acquisition
	// id of key. It answers false with a nil error only when the evidence
	// is provably gone.
	Alive(ctx context.Context, key Key, id string) (bool, error)
	// Forget removes what Keep created for a record that is gone for good
	// (released, or broken after Alive said false). Idempotent.
	Forget(ctx context.Context, key Key, id string) error
}

// Leaser is implemented by Keepers whose evidence is a lease that a record
// written with Change.Kept is attached to: the record ends with the lease.
// A holder that stops renewing (it died, or lost the store) then loses its
// lock by itself within the lease's TTL, wherever it runs, where a record
// beside other evidence stays until someone breaks it. The engine judges
// an entry whose evidence is gone as dead on such a store, whatever its
// pids say, as it would be if the entry were a record on that lease: the
// entries of a version 2 record, which is on no lease (MultiHolder).
type Leaser interface {
	Keeper
	LeasesRecords()
}

// Sweeper is implemented by Keepers that can leave evidence behind that no
// record names (a waiter killed before its turn), or descriptions of
// waiters that died (Announcer): Sweep removes what nobody holds and
// returns what it removed. Maintenance, never on a hot path.
type Sweeper interface {
	Sweep(ctx context.Context) ([]string, error)
}

// Noter is implemented by Kept values that can carry a short note, written
// once after the fact. A reader may catch it half written while the
// evidence is held, and must ignore a note it cannot parse.
// guard notes its command's process group there: one small write instead of
// a rewrite of the record while the command starts.
type Noter interface {
	Note(data []byte) error
}

// NoteReader is implemented by Keepers whose evidence carries notes.
type NoteReader interface {
	// ReadNote returns the note of acquisition id of key (nil if none).
	ReadNote(ctx context.Context, key Key, id string) ([]byte, error)
}

// Kept is the evidence one holder keeps.
type Kept interface {
	// Files are descriptors that processes started by the holder must
	// inherit to keep the evidence alive after the holder itself exits
	// (none for a lease).
	Files() []*os.File
	// Done is closed if the evidence is lost while held (a lease that
	// expired); nil when it cannot be lost while this process lives.
	Done() <-chan struct{}
	// Close gives up this process's hold on the evidence. Inherited copies
	// keep it alive until they close too.
	Close() error
}
