package doctor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lokt-dev/lokt/internal/atomicfs"
	"github.com/lokt-dev/lokt/internal/fsinfo"
)

// filesystem names the filesystem of the root (or of the directory it would
// be created in) and explains what breaks if it is not local.
func (d *doctor) filesystem() verdict {
	strict := fsinfo.RequireLocalSet(d.opts.Getenv)
	info, err := fsinfo.Detect(d.loc.Dir)
	if err != nil {
		v := warn(fmt.Sprintf("cannot tell which filesystem holds %s: %v", d.loc.Dir, err), "")
		if strict {
			v = fail(v.message+"; with "+fsinfo.EnvRequireLocal+" set, lock and guard refuse to run here",
				"make the root's filesystem readable, or unset "+fsinfo.EnvRequireLocal)
		}
		return v
	}
	if !info.Remote() {
		if info.Kind == fsinfo.KindUnknown {
			return ok("%s is on a filesystem of unknown type %s, treated as local", d.loc.Dir, info.Type)
		}
		return ok("%s is on %s", d.loc.Dir, info)
	}
	msg := fmt.Sprintf("%s is on %s: %s", d.loc.Dir, info, info.Risks())
	remedy := "if every process runs on this machine, put the lock root on a local disk (set LOKT_ROOT); otherwise give every lock a --ttl, and set " +
		fsinfo.EnvRequireLocal + "=1 to make lock and guard refuse to run here"
	if strict {
		return fail(msg+"; "+fsinfo.EnvRequireLocal+" is set, so lock and guard refuse to run here",
			"put the lock root on a local disk (set LOKT_ROOT), or unset "+fsinfo.EnvRequireLocal+" to accept the risks")
	}
	return warn(msg, remedy)
}

// roundTrip does what every lock operation does, on doctor's own files in
// locks/: an atomic replace (create, write, fsync, rename, fsync of the
// directory), a read back, a kernel lock on a guard file, and removal.
func (d *doctor) roundTrip() verdict {
	if !d.ready {
		return d.skipped()
	}
	dir := d.locksDir()
	name := probeName()
	guard := name + ".lck"
	payload := []byte(fmt.Sprintf("{\"doctor\": %q}\n", name))
	remedy := "lokt cannot work in this root; check its filesystem (see the filesystem check) and free space, or set LOKT_ROOT to a local, writable directory"
	defer func() {
		_ = os.Remove(filepath.Join(dir, name))
		_ = os.Remove(filepath.Join(dir, guard))
	}()
	start := time.Now()
	if err := atomicfs.WriteFile(dir, name, payload, 0o600); err != nil {
		return fail(fmt.Sprintf("writing a file atomically in %s failed (create, fsync, rename): %v", dir, err), remedy)
	}
	got, err := atomicfs.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return fail(fmt.Sprintf("reading back %s failed: %v", filepath.Join(dir, name), err), remedy)
	}
	if !bytes.Equal(got, payload) {
		return fail(fmt.Sprintf("%s read back different content than was written", filepath.Join(dir, name)), remedy)
	}
	g, err := atomicfs.LockGuard(filepath.Join(dir, guard), 0o600)
	if err != nil {
		return fail(fmt.Sprintf("taking a kernel lock (flock) in %s failed: %v; on NFS this needs the server's lock manager and a mount without nolock", dir, err), remedy)
	}
	if err := g.Unlock(); err != nil {
		return fail(fmt.Sprintf("releasing a kernel lock in %s failed: %v", dir, err), remedy)
	}
	for _, n := range []string{name, guard} {
		if err := atomicfs.Remove(dir, n); err != nil {
			return fail(fmt.Sprintf("deleting %s failed: %v", filepath.Join(dir, n), err), remedy)
		}
	}
	return ok("create, write, fsync, rename, read back, flock and delete in %s took %s", dir, time.Since(start).Round(time.Microsecond))
}

// clockTolerance absorbs coarse file timestamps (FAT keeps two seconds) and
// the time the probe takes.
const clockTolerance = 2 * time.Second

// clock compares the wall clock with the timestamp the filesystem gives a
// file written just now (on NFS the server sets it), and with the times in
// the records: TTLs compare one host's expires_at with another host's clock.
func (d *doctor) clock() verdict {
	now := d.opts.Now()
	remedy := "keep every host that uses this root (and the file server) on NTP, e.g. timedatectl set-ntp true; lokt's TTLs compare a time written by one host's clock with another host's clock"
	if now.Year() < 2020 {
		return warn(fmt.Sprintf("the clock reads %s, which cannot be right", now.Format(time.RFC3339)), remedy)
	}
	if !d.ready {
		v := d.skipped()
		v.message = fmt.Sprintf("clock reads %s; file timestamps not compared (%s)", now.UTC().Format(time.RFC3339), v.message)
		return v
	}
	var problems []string
	path := filepath.Join(d.locksDir(), probeName()+".clock")
	before := d.opts.Now()
	err := os.WriteFile(path, []byte("clock\n"), 0o600)
	after := d.opts.Now()
	if err != nil {
		return warn(fmt.Sprintf("could not write a probe file to compare clocks: %v", err), "see the round-trip check")
	}
	st, err := os.Stat(path)
	_ = os.Remove(path)
	if err != nil {
		return warn(fmt.Sprintf("could not read back a probe file to compare clocks: %v", err), "see the round-trip check")
	}
	mtime := st.ModTime()
	switch {
	case mtime.Before(before.Add(-clockTolerance)):
		problems = append(problems, fmt.Sprintf("a file written just now is stamped %s, %s behind this host's clock", mtime.UTC().Format(time.RFC3339), before.Sub(mtime).Round(time.Second)))
	case mtime.After(after.Add(clockTolerance)):
		problems = append(problems, fmt.Sprintf("a file written just now is stamped %s, %s ahead of this host's clock", mtime.UTC().Format(time.RFC3339), mtime.Sub(after).Round(time.Second)))
	}
	for _, st := range d.statuses {
		if st.Lock == nil {
			continue
		}
		last := st.Lock.AcquiredAt
		if st.Lock.RenewedAt != nil {
			last = *st.Lock.RenewedAt
		}
		if last.After(after.Add(clockTolerance)) {
			problems = append(problems, fmt.Sprintf("lock %q was last written at %s by %s, %s in this host's future", st.Name, last.UTC().Format(time.RFC3339), st.Lock.Host, last.Sub(after).Round(time.Second)))
		}
	}
	if len(problems) > 0 {
		return warn(list(problems, 5), remedy)
	}
	return ok("this host's clock (%s) agrees with the filesystem's timestamps and with the lock records", now.UTC().Format(time.RFC3339))
}
