//go:build unix

package atomicfs

import (
	"errors"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// CreateHeld creates the file name in d (it must not exist) holding a
// shared flock(2). Every process that inherits the descriptor shares that
// lock, and the kernel drops it when the last of them closes it or exits:
// that is what makes it evidence of a live process tree. The file is locked
// under a temporary name first, so it never exists as name unlocked.
func (d *Dir) CreateHeld(name string, perm fs.FileMode) (*os.File, error) {
	return d.CreateHeldWith(name, perm, nil)
}

// CreateHeldWith is CreateHeld for a file that says something: data is
// written before the file gets its name, so a reader never sees it empty.
func (d *Dir) CreateHeldWith(name string, perm fs.FileMode, data []byte) (*os.File, error) {
	tmp := tempName(name)
	f, err := d.openRegular(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err == nil && len(data) > 0 {
		_, err = f.Write(data)
	}
	if err == nil {
		err = d.Rename(tmp, name) // name holds a random lock_id: nothing to replace
	}
	if err != nil {
		_ = f.Close()
		_ = d.unlink(tmp)
		return nil, &fs.PathError{Op: "create", Path: d.join(name), Err: err}
	}
	return f, nil
}

// IsHeld reports whether some process still holds the lock CreateHeld took
// on name. A missing file holds nothing; a symlink or non-regular file is
// refused with ErrNotRegular. The probe takes an exclusive lock without
// waiting and drops it at once.
func (d *Dir) IsHeld(name string) (bool, error) {
	f, err := d.openRegular(name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return false, nil // closing f drops the probe's lock
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, nil
	}
	return false, &fs.PathError{Op: "flock", Path: d.join(name), Err: err}
}

// ReadHeld reads name and reports whether some process still holds the
// lock CreateHeld took on it. The content is read before the probe, so
// content reported as held was written by a holder that was still there
// after the read. A missing file is not held.
func (d *Dir) ReadHeld(name string) (data []byte, held bool, err error) {
	f, err := d.openRegular(name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = f.Close() }()
	const maxNote = 64 << 10 // a description is a few hundred bytes
	data, err = io.ReadAll(io.LimitReader(f, maxNote))
	if err != nil {
		return nil, false, err
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return nil, false, nil // closing f drops the probe's lock
	case errors.Is(err, unix.EWOULDBLOCK):
		return data, true, nil
	}
	return nil, false, &fs.PathError{Op: "flock", Path: d.join(name), Err: err}
}
