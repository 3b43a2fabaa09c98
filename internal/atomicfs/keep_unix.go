//go:build unix

package atomicfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// CreateHeld creates the file at path (it must not exist) holding a shared
// flock(2). Every process that inherits the descriptor shares that lock,
// and the kernel drops it when the last of them closes it or exits: that is
// what makes it evidence of a live process tree. The file is locked under a
// temporary name first, so it never exists at path unlocked.
func CreateHeld(path string, perm fs.FileMode) (*os.File, error) {
	dir, name := filepath.Split(path)
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, TempPrefix+name+"-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err == nil {
		err = os.Rename(tmp, path) // path names a random lock_id: nothing to replace
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	return f, nil
}

// IsHeld reports whether some process still holds the lock CreateHeld took
// on path. A missing file holds nothing. The probe takes an exclusive lock
// without waiting and drops it at once.
func IsHeld(path string) (bool, error) {
	f, err := openNoFollow(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if isSymlinkErr(err) {
			return false, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
		}
		return false, err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() {
		return false, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return false, nil // closing f drops the probe's lock
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, nil
	}
	return false, &fs.PathError{Op: "flock", Path: path, Err: err}
}
