package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/atomicfs"
	"github.com/lokt-dev/lokt/internal/lockfile"
)

// records is what load found in the namespaces, read-only.
type records struct {
	err         error    // the root could not be opened or listed
	unreadable  []string // records lokt will not read (symlinks, directories)
	corrupt     []string // lock names
	unsupported []string // "locks/x.json (version 2)"
	badFreezes  []string // corrupt freeze names
	newFreezes  []string
	expiredFrz  []string
}

// loadLocks judges every lock of root and sorts out the ones that are
// unreadable, corrupt or from a newer protocol, whatever the backend.
func (d *doctor) loadLocks(ctx context.Context, root *lokt.Root) {
	var err error
	d.statuses, err = root.List(ctx)
	if err != nil {
		for _, e := range unjoin(err) {
			d.recs.unreadable = append(d.recs.unreadable, e.Error())
		}
	}
	for _, st := range d.statuses {
		switch st.State {
		case lokt.StateCorrupt:
			d.recs.corrupt = append(d.recs.corrupt, st.Name)
		case lokt.StateUnsupported:
			d.recs.unsupported = append(d.recs.unsupported, st.Problem.Error())
		}
	}
}

// load reads every lock and freeze through the engine's read-only calls.
// The Root is opened without an observer: doctor records nothing.
func (d *doctor) load() {
	if !d.ready {
		return
	}
	root, err := lokt.Open(d.loc.Dir)
	if err != nil {
		d.recs.err = err
		return
	}
	d.loadLocks(context.Background(), root)
	names, err := recordNames(d.freezesDir())
	if err != nil {
		d.recs.err = err
		return
	}
	for _, name := range names {
		_, err := root.GetFreeze(context.Background(), name)
		var corrupt *lokt.CorruptError
		var newer *lokt.UnsupportedVersionError
		switch {
		case err == nil:
		case errors.As(err, &newer):
			d.recs.newFreezes = append(d.recs.newFreezes, newer.Error())
		case errors.As(err, &corrupt):
			d.recs.badFreezes = append(d.recs.badFreezes, name)
		case errors.Is(err, lokt.ErrNotFound):
			if exists(filepath.Join(d.freezesDir(), name+".json")) {
				d.recs.expiredFrz = append(d.recs.expiredFrz, name)
			}
		default:
			d.recs.unreadable = append(d.recs.unreadable, err.Error())
		}
	}
}

// recordNames lists the valid record names in a namespace directory.
func recordNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && lockfile.ValidateName(name) == nil {
			names = append(names, name)
		}
	}
	return names, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (d *doctor) checkRecords() {
	if !d.ready {
		why := d.skipped()
		d.add(CheckUnsupported, why)
		d.add(CheckCorrupt, why)
		d.add(CheckStale, why)
		return
	}
	d.addRecordChecks("check the permissions of the lock root")
}

// addRecordChecks adds the three record checks once the records are loaded,
// or the same failure to all three (with remedy) if they could not be read.
func (d *doctor) addRecordChecks(remedy string) {
	if d.recs.err != nil {
		v := fail(fmt.Sprintf("cannot read the records in %s: %v", d.loc.Dir, d.recs.err), remedy)
		d.add(CheckUnsupported, v)
		d.add(CheckCorrupt, v)
		d.add(CheckStale, v)
		return
	}
	d.add(CheckUnsupported, d.unsupported())
	d.add(CheckCorrupt, d.corrupt())
	d.add(CheckStale, d.stale())
}

func (d *doctor) unsupported() verdict {
	newer := append(append([]string{}, d.recs.unsupported...), d.recs.newFreezes...)
	if len(newer) == 0 {
		return ok("no records written by a newer lokt")
	}
	return warn(fmt.Sprintf("%d record(s) written by a newer protocol version; this lokt cannot take, release or lift those names: %s", len(newer), list(newer, 3)),
		"upgrade lokt everywhere this root is used; an older lokt never changes or deletes these files")
}

func (d *doctor) corrupt() verdict {
	var items, fixes []string
	for _, n := range d.recs.corrupt {
		items = append(items, "lock "+n)
		fixes = append(fixes, "lokt unlock "+n+" --break-stale")
	}
	for _, n := range d.recs.badFreezes {
		items = append(items, "freeze "+n)
		fixes = append(fixes, "lokt unfreeze "+n)
	}
	items = append(items, d.recs.unreadable...)
	if len(items) == 0 {
		return ok("every record is readable")
	}
	remedy := "clear them with: " + list(fixes, 5)
	if len(fixes) == 0 {
		remedy = ""
	}
	if len(d.recs.unreadable) > 0 {
		remedy = strings.TrimPrefix(remedy+"; inspect the others and remove them by hand (lokt never follows or replaces a symlink or directory in a root)", "; ")
	}
	return warn(fmt.Sprintf("%d record(s) are damaged or not files lokt will touch: %s", len(items), list(items, 5)), remedy)
}

func (d *doctor) stale() verdict {
	now := d.opts.Now()
	var items, fixes []string
	for _, st := range d.statuses {
		switch st.State {
		case lokt.StateExpired:
			items = append(items, fmt.Sprintf("%s (held by %s, expired %s ago)", st.Name, holder(st.Lock), since(now, *st.Lock.ExpiresAt)))
		case lokt.StateDead:
			items = append(items, fmt.Sprintf("%s (held by %s, whose process has exited)", st.Name, holder(st.Lock)))
		default:
			continue
		}
		fixes = append(fixes, "lokt unlock "+st.Name+" --break-stale")
	}
	for _, n := range d.recs.expiredFrz {
		items = append(items, "freeze "+n+" (expired)")
	}
	if len(items) == 0 {
		return ok("no stale locks")
	}
	fixes = append([]string{"lokt status --prune-expired removes them all"}, fixes...)
	return warn(fmt.Sprintf("%d stale: %s; lock and guard break a stale lock by themselves when they need the name", len(items), list(items, 5)),
		list(fixes, 4))
}

func holder(l *lokt.Lock) string {
	s := l.Owner + "@" + l.Host
	if l.PID != 0 {
		s += fmt.Sprintf(" pid %d", l.PID)
	}
	return s
}

func since(now, t time.Time) time.Duration {
	d := now.Sub(t)
	if d > time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// tempFiles finds what a crash left behind: atomic-write temporaries and
// doctor's own probes, older than any write in progress could be.
func (d *doctor) tempFiles() verdict {
	now := d.opts.Now()
	var found []string
	for _, dir := range []string{d.loc.Dir, d.locksDir(), d.freezesDir()} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !atomicfs.IsTemp(e.Name()) && !strings.HasPrefix(e.Name(), probePrefix) {
				continue
			}
			info, err := e.Info()
			if err != nil || now.Sub(info.ModTime()) < leftoverTempMinimum {
				continue // gone already, or a write in progress
			}
			found = append(found, filepath.Join(dir, e.Name()))
		}
	}
	if len(found) == 0 {
		return ok("no temporary files left by a crash")
	}
	sort.Strings(found)
	return warn(fmt.Sprintf("%d temporary file(s) left by an interrupted write: %s", len(found), list(found, 5)),
		"remove them (lokt uses a temporary file only for the instant of a write): rm "+strings.Join(found, " "))
}
