package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lokt-dev/lokt/internal/atomicfs"
	"github.com/lokt-dev/lokt/internal/audit"
	"github.com/lokt-dev/lokt/internal/fsinfo"
	"github.com/lokt-dev/lokt/store"
)

func (d *doctor) locksDir() string   { return filepath.Join(d.loc.Dir, string(store.Locks)) }
func (d *doctor) freezesDir() string { return filepath.Join(d.loc.Dir, string(store.Freezes)) }

// checkDirs checks the root and its two namespaces, and decides whether the
// checks that look inside them can run.
func (d *doctor) checkDirs() {
	rootOK, rootExists := d.dirCheck(CheckRootDir, d.loc.Dir, true)
	d.rootBroken = !rootOK
	if d.rootBroken {
		// One cause, one failure: what is inside cannot be judged.
		d.add(CheckLocksDir, d.skipped())
		d.add(CheckFreezesDir, d.skipped())
		return
	}
	locksOK, _ := d.dirCheck(CheckLocksDir, d.locksDir(), rootExists)
	freezesOK, _ := d.dirCheck(CheckFreezesDir, d.freezesDir(), rootExists)
	d.ready = rootExists && locksOK && freezesOK && exists(d.locksDir()) && exists(d.freezesDir())
}

// skipped is the verdict of a check that needs what an earlier check found
// missing or broken. It is ok: the cause is reported once, where it is.
func (d *doctor) skipped() verdict {
	switch {
	case d.rootBroken:
		return ok("not checked: the lock root is not usable (see %s)", CheckRootDir)
	case !exists(d.loc.Dir):
		return ok("not run: the lock root does not exist yet (the first lock creates it)")
	}
	return ok("not run: %s or %s is missing or not usable (see %s, %s)", d.locksDir(), d.freezesDir(), CheckLocksDir, CheckFreezesDir)
}

// dirCheck checks that path is (or can become) a real, writable directory.
// usable is false on failure; exists says whether path is there now.
func (d *doctor) dirCheck(name, path string, parentExists bool) (usable, present bool) {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !parentExists:
		d.add(name, ok("%s does not exist yet; it is created with the lock root", path))
		return true, false
	case errors.Is(err, fs.ErrNotExist):
		// Created on first use: the question is whether that can succeed.
		anc, aerr := fsinfo.Existing(path)
		if aerr != nil {
			d.add(name, fail(fmt.Sprintf("%s does not exist, and no existing parent can be found: %v", path, aerr), "set LOKT_ROOT to a writable directory"))
			return false, false
		}
		if ast, serr := os.Stat(anc); serr != nil || !ast.IsDir() {
			d.add(name, fail(fmt.Sprintf("%s cannot be created: %s is not a directory", path, anc), "set LOKT_ROOT to a writable directory"))
			return false, false
		}
		if werr := d.opts.Writable(anc); werr != nil {
			d.add(name, fail(fmt.Sprintf("%s does not exist and cannot be created: %s is not writable by this user (%v)", path, anc, werr),
				"create it with permissions that let every lokt user write there, or set LOKT_ROOT to a writable directory"))
			return false, false
		}
		d.add(name, ok("%s does not exist yet; the first lock creates it (%s is writable)", path, anc))
		return true, false
	case err != nil:
		d.add(name, fail(fmt.Sprintf("cannot examine %s: %v", path, err), "check the permissions of its parent directories"))
		return false, false
	case st.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		d.add(name, fail(fmt.Sprintf("%s is a symlink (to %s); lokt refuses symlinked directories in a lock root, since one could lead its writes elsewhere", path, target),
			fmt.Sprintf("replace the symlink with a real directory, or set LOKT_ROOT to the real location (%s)", target)))
		return false, true
	case !st.IsDir():
		d.add(name, fail(fmt.Sprintf("%s is a %s, not a directory; lokt cannot use it", path, atomicfs.Kind(st.Mode())),
			"move it out of the way, or set LOKT_ROOT to another directory"))
		return false, true
	}
	if werr := d.opts.Writable(path); werr != nil {
		d.add(name, fail(fmt.Sprintf("%s is not writable by this user (%v): lock, unlock and the audit log fail here", path, werr),
			"give every lokt user write access (for example a shared group with chmod g+ws), or set LOKT_ROOT to a writable directory"))
		return false, true
	}
	d.add(name, ok("%s is a directory and writable", path))
	return true, true
}

// rootPermissions warns about directories that let anyone replace or delete
// anyone's locks.
func (d *doctor) rootPermissions() verdict {
	if !modeBitsMeaningful {
		return ok("not checked on this platform: directory permissions are ACLs, not mode bits")
	}
	if d.rootBroken {
		return d.skipped()
	}
	var open []string
	for _, p := range []string{d.loc.Dir, d.locksDir(), d.freezesDir()} {
		st, err := os.Lstat(p)
		if err != nil || !st.IsDir() {
			continue
		}
		if st.Mode().Perm()&0o002 != 0 && st.Mode()&fs.ModeSticky == 0 {
			open = append(open, fmt.Sprintf("%s (%04o)", p, st.Mode().Perm()))
		}
	}
	if len(open) > 0 {
		return warn("world-writable without the sticky bit, so any local user can delete or replace anyone's lock files: "+list(open, 3),
			"share the root with one group instead (see docs/protocol.md#shared-roots), or chmod +t on them (anyone may still create locks, only owners may remove their files)")
	}
	if st, err := os.Stat(d.loc.Dir); err == nil && st.Mode()&fs.ModeSetgid != 0 {
		return d.sharedRoot(st)
	}
	return ok("the lock root is not world-writable without the sticky bit")
}

// sharedRoot checks the documented set-up of a root shared by a group: the
// root is setgid (new files belong to the group), group-writable, closed
// to others, and this process's umask keeps group write (so every file it
// creates, audit.log included, stays writable by the other members).
func (d *doctor) sharedRoot(st fs.FileInfo) verdict {
	const setup = "the shared-root set-up: install -d -m 2770 -g GROUP ROOT, and umask 002 for every member's lokt processes (docs/protocol.md#shared-roots)"
	perm := st.Mode().Perm()
	group := groupName(st)
	switch {
	case perm&0o070 != 0o070:
		return warn(fmt.Sprintf("%s is setgid (shared with group %s) but mode %04o does not give the group full access, so members cannot create or remove locks there", d.loc.Dir, group, perm),
			"chmod g+rwx "+d.loc.Dir+"; "+setup)
	case perm&0o007 != 0:
		return warn(fmt.Sprintf("%s is shared with group %s but mode %04o lets other users in: non-members can read who locked what", d.loc.Dir, group, perm),
			"chmod o-rwx "+d.loc.Dir+"; "+setup)
	}
	if mask, known := umask(); known && mask&0o060 != 0 {
		return warn(fmt.Sprintf("%s is shared with group %s, but this process's umask %04o removes group access: the guard files and audit.log it creates will not be writable by the other members", d.loc.Dir, group, mask),
			"run every member's lokt with umask 002 (in a crontab line: umask 002; lokt ...); "+setup)
	}
	return ok("%s is shared with group %s (setgid, mode %04o): new files belong to the group and are group-writable (audit.log %04o), other users cannot enter", d.loc.Dir, group, perm, audit.SharedFileMode)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
