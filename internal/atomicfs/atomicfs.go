// Package atomicfs holds the file operations the lock store is built from:
// replace a file atomically, read a file without following links, take an
// exclusive kernel lock on a guard file, and make directories that must not
// be symlinks. Platform differences live in the _unix and _windows files.
package atomicfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TempPrefix starts the name of every temporary file WriteFile creates, so
// that doctor can recognise leftovers of a crash.
const TempPrefix = ".tmp-"

// ErrNotRegular is wrapped when a path that must be a plain file is a
// symlink, a directory, a device or anything else.
var ErrNotRegular = errors.New("not a regular file")

// WriteFile replaces dir/name with data so that a reader sees either the old
// or the new content, never a mix, and the new content survives a crash of
// the host: write a temporary file in the same directory, fsync it, rename
// it over the target, fsync the directory.
func WriteFile(dir, name string, data []byte, perm fs.FileMode) error {
	return replace(dir, name, data, perm, true)
}

// WriteFileVolatile is WriteFile without the two fsyncs: just as atomic for
// readers, but a crash of the host may lose the change (or leave an empty
// file behind). For records that mean nothing after such a crash.
func WriteFileVolatile(dir, name string, data []byte, perm fs.FileMode) error {
	return replace(dir, name, data, perm, false)
}

func replace(dir, name string, data []byte, perm fs.FileMode, durable bool) error {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := filepath.Join(dir, TempPrefix+name+"-"+hex.EncodeToString(rnd[:]))
	f, err := openExclusive(tmp, perm)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()
			_ = os.Remove(tmp)
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
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		committed = true
		return err
	}
	committed = true
	if !durable {
		return nil
	}
	return syncDir(dir)
}

// Remove deletes dir/name and makes the removal durable.
func Remove(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// ReadFile reads a regular file without following a symlink at its last
// component. A symlink, directory or other non-regular file yields an error
// wrapping ErrNotRegular; a missing file yields an fs.ErrNotExist error.
func ReadFile(path string) ([]byte, error) {
	f, err := openNoFollow(path)
	if err != nil {
		if isSymlinkErr(err) {
			return nil, fmt.Errorf("%s: %w (it is a symlink, which lokt never follows)", path, ErrNotRegular)
		}
		return nil, err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (it is a %s)", path, ErrNotRegular, Kind(st.Mode()))
	}
	// A record is a few hundred bytes; refuse to slurp a planted huge file.
	const maxRecord = 1 << 20
	data, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRecord {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a lokt record", path, maxRecord)
	}
	return data, nil
}

// EnsureDir creates path (and missing parents) if needed and checks that it
// is a real directory: a symlink there could lead writes out of the root.
func EnsureDir(path string, perm fs.FileMode) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(path, perm); err != nil {
			return err
		}
		st, err = os.Lstat(path)
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is a %s, not a directory; lokt will not use it (move it away, or point LOKT_ROOT elsewhere)", path, Kind(st.Mode()))
	}
	return nil
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
