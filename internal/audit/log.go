package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/lokt-dev/lokt/internal/atomicfs"
)

// Log appends records to one lock root's audit log. One Log per process and
// root is enough; its methods are safe for concurrent use.
//
// Rotation without losing or duplicating a line, across processes:
//
//   - A writer holds a shared flock on its descriptor of audit.log while it
//     checks that the descriptor still is audit.log (fstat against lstat of
//     the path) and appends. If the check fails the file was rotated (or
//     removed): it reopens audit.log and tries again.
//   - A rotator takes an exclusive flock on its descriptor of audit.log
//     (giving up after a few quick tries), checks again that it still is audit.log and still
//     over the limit, renames audit.log.N-1 to .N ... audit.log to .1, and
//     unlocks.
//
// The exclusive lock waits out every writer between its check and its
// append, and a writer that locks after the rename fails its check, so no
// line is ever appended to a file after it has been renamed: each line lands
// exactly once, in the file that was audit.log when it was written. Two
// rotators cannot both rotate: the second either fails to lock or finds
// that its descriptor is no longer audit.log. A process killed mid-rotation
// loses its flock with its life; the half-shifted chain is completed by the
// next rotation without losing a generation other than the oldest.
//
// Because a rotator gives up after a millisecond rather than wait for the
// lock, a busy log may grow a little past MaxBytes before one writer gets
// it; that is the price of never blocking a lock operation on its audit
// trail.
type Log struct {
	dir  string
	path string
	cfg  Config

	mu sync.Mutex
	d  *atomicfs.Dir // the root, opened at the first append
	f  *os.File
}

// New returns the log of the lock root dir. Nothing is opened until the
// first Append.
func New(dir string, cfg Config) *Log {
	if cfg.Keep < 1 {
		cfg.Keep = 1
	}
	return &Log{dir: dir, path: filepath.Join(dir, FileName), cfg: cfg}
}

// Path is the audit log's location.
func (l *Log) Path() string { return l.path }

// Append writes rec as one line. An error means the line may not have been
// recorded; it never means the event did not happen.
func (l *Log) Append(rec *Record) error {
	line, err := rec.Marshal()
	if err != nil {
		return err
	}
	return l.WriteLine(line)
}

// maxReopen bounds the retries when audit.log is replaced between opening
// and locking it: a few rotations in a row are possible with a tiny
// MaxBytes, a file replaced forever is not.
const maxReopen = 64

// WriteLine appends line, which must be one record ending in a newline, with
// a single write(2).
func (l *Log) WriteLine(line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if attempt == maxReopen {
			return fmt.Errorf("%s keeps being replaced while lokt writes to it", l.path)
		}
		if l.d == nil {
			d, err := atomicfs.OpenDir(l.dir, false, 0)
			if err != nil {
				return err
			}
			l.d = d
		}
		if l.f == nil {
			f, err := openAppend(l.d)
			if err != nil {
				return err
			}
			l.f = f
		}
		size, written, err := l.appendLocked(line)
		if err != nil {
			l.closeFile()
			return err
		}
		if !written {
			l.closeFile() // rotated away under us: the next attempt opens the new audit.log
			continue
		}
		if l.cfg.MaxBytes > 0 && RotationSupported && size >= l.cfg.MaxBytes {
			return l.rotate()
		}
		return nil
	}
}

// appendLocked writes line if l.f is still audit.log, under a shared lock.
// written is false when the descriptor was rotated away.
func (l *Log) appendLocked(line []byte) (size int64, written bool, err error) {
	if err := lockShared(l.f); err != nil {
		return 0, false, fmt.Errorf("%s: %w", l.path, err)
	}
	defer func() {
		if uerr := unlock(l.f); err == nil && uerr != nil {
			err = uerr
		}
	}()
	cur, err := l.d.Holds(FileName, l.f)
	if err != nil || !cur {
		return 0, false, err
	}
	n, err := writeOnce(l.f, line)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", l.path, err)
	}
	if n != len(line) {
		return 0, false, fmt.Errorf("%s: %w (%d of %d bytes)", l.path, io.ErrShortWrite, n, len(line))
	}
	st, err := l.f.Stat()
	if err != nil {
		return 0, true, nil // the line is written; only the size check is lost
	}
	return st.Size(), true, nil
}

// rotate renames the generations if l.f is still audit.log, over the limit,
// and no one else holds a lock on it. l.f is closed afterwards either way:
// after a rotation it names audit.log.1.
func (l *Log) rotate() error {
	defer l.closeFile()
	ok, err := tryLockExclusiveBriefly(l.f)
	if err != nil || !ok {
		return err // busy: a later write retries
	}
	defer func() { _ = unlock(l.f) }()
	if cur, err := l.d.Holds(FileName, l.f); err != nil || !cur {
		return err
	}
	st, err := l.f.Stat()
	if err != nil {
		return err
	}
	if st.Size() < l.cfg.MaxBytes {
		return nil
	}
	if err := shiftGenerations(l.d, l.cfg.Keep); err != nil {
		return fmt.Errorf("rotating %s: %w", l.path, err)
	}
	if err := l.d.Rename(FileName, genName(1)); err != nil {
		return fmt.Errorf("rotating %s: %w", l.path, err)
	}
	return nil
}

// rotateAttempts and rotateBackoff bound how long a writer tries for the
// exclusive lock: other writers hold the shared lock for microseconds, so a
// few short tries almost always succeed under load, while a reader or a
// stalled process makes the writer give up after about a millisecond.
const (
	rotateAttempts = 5
	rotateBackoff  = 50 * time.Microsecond
)

func tryLockExclusiveBriefly(f *os.File) (bool, error) {
	delay := rotateBackoff
	for i := 0; ; i++ {
		ok, err := tryLockExclusive(f)
		if ok || err != nil || i == rotateAttempts-1 {
			return ok, err
		}
		time.Sleep(delay)
		delay *= 2
	}
}

func (l *Log) closeFile() {
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

// Close releases the log's descriptor. The Log may be used again after it.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeFile()
	if l.d != nil {
		_ = l.d.Close()
		l.d = nil
	}
	return nil
}

// shiftGenerations makes room for a new audit.log.1: generations numbered
// keep or more are removed (the oldest falls off, and a smaller keep than
// before trims the excess), the others move up by one, highest first so
// each rename's target has already moved on. Only existing files are
// touched, so a gap left by a rotator that died half-way is harmless.
func shiftGenerations(d *atomicfs.Dir, keep int) error {
	gens, err := generations(d)
	if err != nil {
		return err
	}
	for _, g := range gens {
		n := genNumber(g)
		if n >= keep {
			err = d.Remove(g, false)
		} else {
			err = d.Rename(g, genName(n+1))
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// genName is the name of the n-th rotated generation.
func genName(n int) string { return FileName + "." + strconv.Itoa(n) }

// genPath is the n-th rotated generation of path.
func genPath(path string, n int) string { return path + "." + strconv.Itoa(n) }
