//go:build windows

package atomicfs

import (
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// Windows has no O_NOFOLLOW; symlinks in a lock root are rare there and
// doctor reports them. This is one of the documented Windows gaps.
func openExclusive(path string, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}

func openNoFollow(path string) (*os.File, error) {
	st, err := os.Lstat(path)
	if err == nil && st.Mode()&fs.ModeSymlink != 0 {
		return nil, errSymlink
	}
	return os.Open(path)
}

var errSymlink = &fs.PathError{Op: "open", Err: ErrNotRegular}

func isSymlinkErr(err error) bool { return err == errSymlink }

// Windows cannot fsync a directory handle opened this way; rename is atomic
// on NTFS (MoveFileEx with REPLACE_EXISTING).
func syncDir(string) error { return nil }

func openGuard(path string, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, perm)
}

func lockExclusive(f *os.File) error {
	var ol windows.Overlapped
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &ol)
}
