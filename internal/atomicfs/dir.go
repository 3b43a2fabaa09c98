package atomicfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Dir is an open directory. Every operation on it names one entry directly
// inside it and is resolved against the open descriptor, never against a
// path: replacing the directory's path (or any directory above it) with a
// symlink cannot redirect lokt's reads and writes. No operation follows a
// symlink, and none but ReadDirNames touches anything that is not a regular
// file. The platform files define the struct; it always has path.

// Path is where the directory was when it was opened, for messages.
func (d *Dir) Path() string { return d.path }

func (d *Dir) join(name string) string { return filepath.Join(d.path, name) }

func (d *Dir) swapped(name string, m fs.FileMode) error {
	return fmt.Errorf("%s: %w (it is now a %s); lokt never follows links in a lock root: move the %s away and restore the directory lokt created, then rerun lokt", d.join(name), ErrSwapped, Kind(m), Kind(m))
}

// ErrSwapped is wrapped when a directory of the root is no longer the one
// lokt opened.
var ErrSwapped = errors.New("no longer the directory lokt opened")

// ReadFile reads the regular file name. A symlink, directory or other
// non-regular file yields an error wrapping ErrNotRegular, without any I/O
// on it; a missing file yields an fs.ErrNotExist error.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	f, err := d.openRegular(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	// A record is a few hundred bytes; refuse to slurp a planted huge file.
	const maxRecord = 1 << 20
	data, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRecord {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a lokt record", d.join(name), maxRecord)
	}
	return data, nil
}

// OpenFile opens (with os.O_CREATE: creating) the regular file name with
// flag, refusing symlinks and non-regular files with ErrNotRegular before
// any I/O on them.
func (d *Dir) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return d.openRegular(name, flag, perm)
}

// notRegular is the error for an entry of the wrong type.
func (d *Dir) notRegular(name string, m fs.FileMode) error {
	return fmt.Errorf("%s: %w (it is a %s, which lokt never follows, reads or writes)", d.join(name), ErrNotRegular, Kind(m))
}

// tempName is a fresh temporary name for name. It only needs to be unique
// (O_EXCL catches the rare clash), not secret: the runtime's generator
// avoids crypto/rand's start-up cost.
func tempName(name string) string {
	return fmt.Sprintf("%s%s-%012x", TempPrefix, name, rand.Uint64()&(1<<48-1)) //nolint:gosec // uniqueness, not secrecy
}

// WriteFile replaces name with data so that a reader sees either the old or
// the new content, never a mix; if durable, the new content survives a
// crash of the host: write a temporary file in d, fsync it, rename it over
// the target, fsync d. Without durable, a crash of the host may lose the
// change (or leave an empty file), for records that mean nothing after one.
func (d *Dir) WriteFile(name string, data []byte, perm fs.FileMode, durable bool) error {
	tmp := tempName(name)
	f, err := d.openRegular(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()
			_ = d.unlink(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if durable {
		if err := syncData(f); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	committed = true
	if err := d.Rename(tmp, name); err != nil {
		_ = d.unlink(tmp)
		return err
	}
	if !durable {
		return nil
	}
	return d.Sync()
}

// Remove deletes the entry name (never a directory); if durable, the
// removal survives a crash of the host.
func (d *Dir) Remove(name string, durable bool) error {
	if err := d.unlink(name); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	return d.Sync()
}

// OpenGuard opens (creating if needed) the guard file name without locking
// it. A symlink or a non-regular file there is refused with ErrNotRegular.
func (d *Dir) OpenGuard(name string, perm fs.FileMode) (*Guard, error) {
	f, err := d.openRegular(name, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	return &Guard{f: f}, nil
}

// LockGuard is OpenGuard followed by Lock.
func (d *Dir) LockGuard(name string, perm fs.FileMode) (*Guard, error) {
	g, err := d.OpenGuard(name, perm)
	if err != nil {
		return nil, err
	}
	if err := g.Lock(); err != nil {
		_ = g.Unlock()
		return nil, err
	}
	return g, nil
}
