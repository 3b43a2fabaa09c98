// Package atomicfs holds the file operations the lock store is built from,
// all relative to a directory opened once (Dir) and none following a link:
// replace a file atomically, read a regular file, take an exclusive kernel
// lock on a guard file that also keeps a fencing counter, and hold the
// shared lock of a holder's evidence. Platform differences live in the
// _unix and _windows files.
package atomicfs

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
)

// TempPrefix starts the name of every temporary file WriteFile creates, so
// that doctor can recognise leftovers of a crash.
const TempPrefix = ".tmp-"

// ErrNotRegular is wrapped when a path that must be a plain file is a
// symlink, a directory, a device or anything else.
var ErrNotRegular = errors.New("not a regular file")

// WriteFile replaces dir/name durably; see Dir.WriteFile. Callers that
// work in a lock root use the Dir they opened instead.
func WriteFile(dir, name string, data []byte, perm fs.FileMode) error {
	return inDir(dir, func(d *Dir) error { return d.WriteFile(name, data, perm, true) })
}

// Remove deletes dir/name and makes the removal durable.
func Remove(dir, name string) error {
	return inDir(dir, func(d *Dir) error { return d.Remove(name, true) })
}

// ReadFile reads the regular file at path; see Dir.ReadFile.
func ReadFile(path string) (data []byte, err error) {
	err = inDir(filepath.Dir(path), func(d *Dir) error {
		data, err = d.ReadFile(filepath.Base(path))
		return err
	})
	return data, err
}

func inDir(dir string, fn func(*Dir) error) error {
	d, err := OpenDir(dir, false, 0)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return fn(d)
}

// IsTemp reports whether a directory entry is a temporary file of WriteFile.
func IsTemp(name string) bool { return strings.HasPrefix(name, TempPrefix) }

// Kind names a file type for messages: "symlink", "directory", ...
func Kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsRegular():
		return "regular file"
	}
	return "special file"
}
