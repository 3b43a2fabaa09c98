//go:build unix

package atomicfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is an open directory; see dir.go.
type Dir struct {
	f    *os.File
	path string
	// dev and ino identify the directory f is open on, which cannot change
	// while it is open: the swap checks compare a path against them
	// without another fstat each time.
	dev, ino uint64
}

// newDir wraps the directory descriptor fd, noting which directory it is.
func newDir(fd int, path string) (*Dir, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil //nolint:unconvert // Dev is 32 bits on some platforms
}

// OpenDir opens the directory at path, creating it (and missing parents)
// if create is set. Symlinks above path are followed (a home directory or
// macOS /tmp may be one); path itself must be a real directory. This is the
// only operation that resolves a path: everything else is relative to the
// returned Dir.
func OpenDir(path string, create bool, perm fs.FileMode) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	open := func() (int, error) {
		return unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	fd, err := open()
	if errors.Is(err, unix.ENOENT) && create {
		if err := os.MkdirAll(abs, perm); err != nil {
			return nil, err
		}
		fd, err = open()
	}
	if err != nil {
		return nil, dirOpenError(abs, err, func() (fs.FileMode, error) {
			st, err := os.Lstat(abs)
			if err != nil {
				return 0, err
			}
			return st.Mode().Type(), nil
		})
	}
	return newDir(fd, abs)
}

// dirOpenError explains why a directory could not be opened without
// following a link.
func dirOpenError(path string, err error, typ func() (fs.FileMode, error)) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		if m, serr := typ(); serr == nil && !m.IsDir() {
			return fmt.Errorf("%s is a %s, not a directory; lokt will not use it (move it away, or point LOKT_ROOT elsewhere)", path, Kind(m))
		}
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

// Sub opens the directory name inside d, creating it if create is set. A
// symlink there is refused, whatever it points to.
func (d *Dir) Sub(name string, create bool, perm fs.FileMode) (*Dir, error) {
	defer runtime.KeepAlive(d.f)
	fd := int(d.f.Fd())
	if create {
		if err := unix.Mkdirat(fd, name, uint32(perm.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, &fs.PathError{Op: "mkdir", Path: d.join(name), Err: err}
		}
	}
	sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, dirOpenError(d.join(name), err, func() (fs.FileMode, error) { return d.Type(name) })
	}
	return newDir(sub, d.join(name))
}

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

// SameAs checks that name in d is still the directory sub: not removed,
// not replaced, not a symlink. A store checks its namespace directories
// with it so that a swap is reported rather than silently worked around.
func (d *Dir) SameAs(name string, sub *Dir) error {
	defer runtime.KeepAlive(d.f)
	var st unix.Stat_t
	if err := unix.Fstatat(int(d.f.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w (%w); restore the directory lokt created, then rerun lokt", d.join(name), ErrSwapped, err)
	}
	if uint32(st.Mode)&unix.S_IFMT != unix.S_IFDIR || !sub.is(&st) {
		return d.swapped(name, modeOf(uint32(st.Mode)))
	}
	return nil
}

// Type returns the type bits of the entry name, without following it.
func (d *Dir) Type(name string) (fs.FileMode, error) {
	defer runtime.KeepAlive(d.f)
	var st unix.Stat_t
	if err := unix.Fstatat(int(d.f.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, &fs.PathError{Op: "lstat", Path: d.join(name), Err: err}
	}
	return modeOf(uint32(st.Mode)), nil
}

// openRegular opens name with O_NOFOLLOW and O_NONBLOCK (a planted FIFO
// neither blocks the open nor gets read) and checks its type on the open
// descriptor before any I/O.
func (d *Dir) openRegular(name string, flag int, perm fs.FileMode) (*os.File, error) {
	defer runtime.KeepAlive(d.f)
	fd, err := unix.Openat(int(d.f.Fd()), name, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		// ELOOP: a symlink. ENXIO: a FIFO opened for writing, or a
		// socket. EISDIR: a directory opened for writing.
		if m, serr := d.Type(name); serr == nil && !m.IsRegular() {
			return nil, d.notRegular(name, m)
		}
		return nil, &fs.PathError{Op: "open", Path: d.join(name), Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: d.join(name), Err: err}
	}
	if uint32(st.Mode)&unix.S_IFMT != unix.S_IFREG {
		_ = unix.Close(fd)
		return nil, d.notRegular(name, modeOf(uint32(st.Mode)))
	}
	// Back to blocking mode, which regular files ignore anyway, so that
	// os.File does not try to register the descriptor with its poller.
	_ = unix.SetNonblock(fd, false)
	return os.NewFile(uintptr(fd), d.join(name)), nil
}

// Rename renames old to new, both in d. Neither is followed if a symlink.
func (d *Dir) Rename(old, new string) error {
	defer runtime.KeepAlive(d.f)
	fd := int(d.f.Fd())
	if err := unix.Renameat(fd, old, fd, new); err != nil {
		return &os.LinkError{Op: "rename", Old: d.join(old), New: d.join(new), Err: err}
	}
	return nil
}

func (d *Dir) unlink(name string) error {
	defer runtime.KeepAlive(d.f)
	if err := unix.Unlinkat(int(d.f.Fd()), name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: d.join(name), Err: err}
	}
	return nil
}

// Sync makes the directory's entries (creations, renames, removals)
// durable. Some filesystems cannot fsync a directory; a rename there is
// still atomic, so EINVAL is not an error.
func (d *Dir) Sync() error {
	defer runtime.KeepAlive(d.f)
	for {
		err := unix.Fsync(int(d.f.Fd()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil && !errors.Is(err, unix.EINVAL) {
			return &fs.PathError{Op: "sync", Path: d.path, Err: err}
		}
		return nil
	}
}

// ReadDirNames lists the entries of d, unsorted.
func (d *Dir) ReadDirNames() ([]string, error) {
	defer runtime.KeepAlive(d.f)
	fd, err := unix.Openat(int(d.f.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer func() { _ = f.Close() }()
	return f.Readdirnames(-1)
}

// modeOf turns the file type bits of st_mode into fs.FileMode type bits.
func modeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFREG:
		return 0
	}
	return fs.ModeIrregular
}

// Holds reports whether the entry name in d is the file f is open on (not
// rotated away, removed or replaced); false, without error, if name is gone.
func (d *Dir) Holds(name string, f *os.File) (bool, error) {
	defer runtime.KeepAlive(d.f)
	var st unix.Stat_t
	err := unix.Fstatat(int(d.f.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, &fs.PathError{Op: "lstat", Path: d.join(name), Err: err}
	}
	fst, err := f.Stat()
	if err != nil {
		return false, err
	}
	cur, ok := fst.Sys().(*syscall.Stat_t)
	if !ok {
		return false, nil
	}
	return uint64(st.Dev) == uint64(cur.Dev) && uint64(st.Ino) == uint64(cur.Ino), nil
}

// StillAt checks that d's path still names d: the directory was not
// moved, removed or replaced by a symlink since it was opened. Links above
// the path are followed, as when it was opened.
func (d *Dir) StillAt() error {
	var st unix.Stat_t
	if err := unix.Lstat(d.path, &st); err != nil {
		return fmt.Errorf("%s: %w (%w); restore the directory lokt created, then rerun lokt", d.path, ErrSwapped, err)
	}
	if uint32(st.Mode)&unix.S_IFMT != unix.S_IFDIR || !d.is(&st) {
		return fmt.Errorf("%s: %w (it is now a %s); lokt never follows links in a lock root: move the %s away and restore the directory lokt created, then rerun lokt", d.path, ErrSwapped, Kind(modeOf(uint32(st.Mode))), Kind(modeOf(uint32(st.Mode))))
	}
	return nil
}

// is reports whether st describes the directory d is open on.
func (d *Dir) is(st *unix.Stat_t) bool {
	return uint64(st.Dev) == d.dev && uint64(st.Ino) == d.ino //nolint:unconvert // Dev is 32 bits on some platforms
}
