//go:build windows

package atomicfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Dir is an open directory; see dir.go. On Windows it is an os.Root, which
// refuses paths that leave it; lokt only ever names one entry in it.
type Dir struct {
	r    *os.Root
	path string
}

// OpenDir opens the directory at path, creating it if create is set.
func OpenDir(path string, create bool, perm fs.FileMode) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.MkdirAll(abs, perm); err != nil {
			return nil, err
		}
		st, err = os.Lstat(abs)
	}
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is a %s, not a directory; lokt will not use it (move it away, or point LOKT_ROOT elsewhere)", abs, Kind(st.Mode()))
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, err
	}
	return &Dir{r: r, path: abs}, nil
}

// Sub opens the directory name inside d, creating it if create is set.
func (d *Dir) Sub(name string, create bool, perm fs.FileMode) (*Dir, error) {
	if create {
		if err := d.r.Mkdir(name, perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	m, err := d.Type(name)
	if err != nil {
		return nil, err
	}
	if !m.IsDir() {
		return nil, fmt.Errorf("%s is a %s, not a directory; lokt will not use it (move it away, or point LOKT_ROOT elsewhere)", d.join(name), Kind(m))
	}
	r, err := d.r.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	return &Dir{r: r, path: d.join(name)}, nil
}

// Close closes the directory.
func (d *Dir) Close() error { return d.r.Close() }

// SameAs checks that name in d is still the directory sub.
func (d *Dir) SameAs(name string, sub *Dir) error {
	st, err := d.r.Lstat(name)
	if err != nil {
		return fmt.Errorf("%s: %w (%w); restore the directory lokt created, then rerun lokt", d.join(name), ErrSwapped, err)
	}
	cur, err := sub.r.Stat(".")
	if err != nil {
		return err
	}
	if !st.IsDir() || !os.SameFile(st, cur) {
		return d.swapped(name, st.Mode().Type())
	}
	return nil
}

// Type returns the type bits of the entry name, without following it.
func (d *Dir) Type(name string) (fs.FileMode, error) {
	st, err := d.r.Lstat(name)
	if err != nil {
		return 0, err
	}
	return st.Mode().Type(), nil
}

// Windows has no O_NOFOLLOW: the entry's type is checked before and after
// the open. Symlinks in a lock root are rare there; this is one of the
// documented Windows gaps.
func (d *Dir) openRegular(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if m, err := d.Type(name); err == nil && !m.IsRegular() {
		return nil, d.notRegular(name, m)
	}
	f, err := d.r.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, d.notRegular(name, st.Mode().Type())
	}
	return f, nil
}

// Rename renames old to new, both in d.
func (d *Dir) Rename(old, new string) error { return d.r.Rename(old, new) }

func (d *Dir) unlink(name string) error { return d.r.Remove(name) }

// Sync is a no-op: Windows cannot fsync a directory handle opened this
// way, and a rename is atomic on NTFS (MoveFileEx, REPLACE_EXISTING).
func (d *Dir) Sync() error { return nil }

// ReadDirNames lists the entries of d, unsorted.
func (d *Dir) ReadDirNames() ([]string, error) {
	f, err := d.r.Open(".")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return f.Readdirnames(-1)
}

// Holds reports whether the entry name in d is the file f is open on.
func (d *Dir) Holds(name string, f *os.File) (bool, error) {
	st, err := d.r.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fst, err := f.Stat()
	if err != nil {
		return false, err
	}
	return os.SameFile(st, fst), nil
}

// StillAt checks that d's path still names d.
func (d *Dir) StillAt() error {
	st, err := os.Lstat(d.path)
	if err != nil {
		return fmt.Errorf("%s: %w (%w); restore the directory lokt created, then rerun lokt", d.path, ErrSwapped, err)
	}
	cur, err := d.r.Stat(".")
	if err != nil {
		return err
	}
	if !st.IsDir() || !os.SameFile(st, cur) {
		return fmt.Errorf("%s: %w (it is now a %s); restore the directory lokt created, then rerun lokt", d.path, ErrSwapped, Kind(st.Mode()))
	}
	return nil
}
