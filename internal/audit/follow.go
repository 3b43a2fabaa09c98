package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/lokt-dev/lokt/internal/atomicfs"
)

// FollowOptions tunes Follow.
type FollowOptions struct {
	// FromStart replays the whole log before following; otherwise only
	// records written after Follow starts are delivered.
	FromStart bool
	// Ready, if set, is called once Follow is watching: every record
	// written after Ready is called will be delivered.
	Ready func()
	// Recheck is the interval of a safety re-read besides file events, for
	// writes the kernel does not report (another NFS client's, or an
	// overflowed event queue). Zero means DefaultRecheck.
	Recheck time.Duration
}

// DefaultRecheck is FollowOptions.Recheck's default: slow enough to cost
// nothing, fast enough for a person watching.
const DefaultRecheck = 2 * time.Second

// Follow delivers records as they are appended to the audit log in dir,
// across rotations, until ctx ends; it then returns ctx's error. It wakes on
// file events (inotify, kqueue) for the root directory, never by spinning.
//
// It follows rotation by identity, not by name: it keeps a descriptor on
// the file it reads, and when audit.log no longer is that file it finishes
// the old file (under Log's protocol nothing is appended to a file after its
// rename), then reads every generation newer than it, then the new
// audit.log. So a record written just before or just after a rotation is
// delivered once, even when several rotations happened in between, as long
// as the file being read has not been rotated out of the kept generations.
func Follow(ctx context.Context, dir string, opts FollowOptions, fn Handler) (Stats, error) {
	fl := &follower{path: filepath.Join(dir, FileName), fn: fn}
	defer fl.close()
	d, err := atomicfs.OpenDir(dir, false, 0)
	if err != nil {
		return fl.st, err
	}
	fl.d = d
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fl.st, fmt.Errorf("cannot watch %s: %w", dir, err)
	}
	defer func() { _ = w.Close() }()
	// Watch before the first read, so nothing written in between is missed.
	if err := w.Add(dir); err != nil {
		return fl.st, fmt.Errorf("cannot watch %s: %w", dir, err)
	}
	if err := fl.start(opts.FromStart); err != nil {
		return fl.st, err
	}
	if opts.Ready != nil {
		opts.Ready()
	}
	recheck := opts.Recheck
	if recheck <= 0 {
		recheck = DefaultRecheck
	}
	tick := time.NewTicker(recheck)
	defer tick.Stop()
	base := filepath.Base(fl.path)
	for {
		select {
		case <-ctx.Done():
			return fl.st, ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return fl.st, errors.New("file watcher closed")
			}
			if !strings.HasPrefix(filepath.Base(ev.Name), base) {
				continue // locks/, freezes/ and anything else in the root
			}
		case werr, ok := <-w.Errors:
			if !ok {
				return fl.st, errors.New("file watcher closed")
			}
			_ = werr // an overflowed queue loses wake-ups, not data: re-read below
		case <-tick.C:
		}
		if err := fl.catchUp(); err != nil {
			return fl.st, err
		}
	}
}

type follower struct {
	d    *atomicfs.Dir // the root: every read goes through it
	path string
	fn   Handler
	st   Stats
	cur  *os.File // the file being read (nil: no audit.log seen yet)
	lr   *lineReader
	// seen is the newest file already delivered (or skipped, when not
	// replaying): cur, or when there is no audit.log the newest generation.
	seen os.FileInfo
}

func (fl *follower) start(fromStart bool) error {
	files, err := snapshot(fl.d)
	if err != nil {
		return err
	}
	cur, gens := splitCurrent(files)
	defer closeAll(gens)
	if fromStart {
		for _, g := range gens {
			if err := fl.drain(g); err != nil {
				closeAll([]*os.File{cur})
				return err
			}
		}
	}
	if len(gens) > 0 {
		fl.seen, _ = gens[len(gens)-1].Stat()
	}
	if cur == nil {
		return nil
	}
	if !fromStart {
		if _, err := cur.Seek(0, io.SeekEnd); err != nil {
			_ = cur.Close()
			return err
		}
	}
	fl.setCurrent(cur)
	return fl.lr.each(&fl.st, fl.fn)
}

// splitCurrent separates audit.log (last in a snapshot, if present) from the
// generations.
func splitCurrent(files []*os.File) (cur *os.File, gens []*os.File) {
	if len(files) == 0 {
		return nil, nil
	}
	last := files[len(files)-1]
	if filepath.Base(last.Name()) == FileName {
		return last, files[:len(files)-1]
	}
	return nil, files
}

func (fl *follower) setCurrent(f *os.File) {
	fl.cur = f
	fl.lr = newLineReader(f)
	fl.seen, _ = f.Stat()
}

// drain delivers the whole of a file that will not grow any more.
func (fl *follower) drain(f *os.File) error {
	lr := newLineReader(f)
	if err := lr.each(&fl.st, fl.fn); err != nil {
		return err
	}
	return lr.finish(&fl.st, fl.fn)
}

// catchUp delivers what was appended since the last call, moving on to
// newer files if audit.log was rotated.
func (fl *follower) catchUp() error {
	if fl.cur != nil {
		if err := fl.lr.each(&fl.st, fl.fn); err != nil {
			return err
		}
		if same, err := fl.d.Holds(FileName, fl.cur); err != nil || same {
			return err
		}
	}
	files, err := snapshot(fl.d)
	if err != nil {
		return err
	}
	cur, gens := splitCurrent(files)
	defer closeAll(gens)
	if fl.cur != nil {
		// Rotated: the old file is final now; read what landed after the
		// read above, and give up on a line that never got its newline.
		err := fl.lr.each(&fl.st, fl.fn)
		if err == nil {
			err = fl.lr.finish(&fl.st, fl.fn)
		}
		_ = fl.cur.Close()
		fl.cur, fl.lr = nil, nil
		if err != nil {
			closeAll([]*os.File{cur})
			return err
		}
	}
	for _, g := range fl.newer(gens) {
		if err := fl.drain(g); err != nil {
			closeAll([]*os.File{cur})
			return err
		}
		fl.seen, _ = g.Stat()
	}
	if cur != nil {
		fl.setCurrent(cur)
		return fl.lr.each(&fl.st, fl.fn)
	}
	return nil
}

// newer returns the generations written after fl.seen, oldest first. If
// seen is not among them it was rotated out of the kept set (or nothing was
// seen yet), and all of them are newer.
func (fl *follower) newer(gens []*os.File) []*os.File {
	if fl.seen == nil {
		return gens
	}
	for i := len(gens) - 1; i >= 0; i-- {
		if st, err := gens[i].Stat(); err == nil && os.SameFile(st, fl.seen) {
			return gens[i+1:]
		}
	}
	return gens
}

func (fl *follower) close() {
	if fl.cur != nil {
		_ = fl.cur.Close()
	}
	if fl.d != nil {
		_ = fl.d.Close()
	}
}
