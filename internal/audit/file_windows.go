//go:build windows

package audit

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"

	"github.com/lokt-dev/lokt/internal/atomicfs"
)

// RotationSupported is false: Windows cannot rename a file that another
// process holds open (Go opens files without FILE_SHARE_DELETE), so
// audit.log grows without bound there; doctor reports its size.
const RotationSupported = false

// openAppend opens (creating, mode FileMode) the log in the root d for
// appending; Windows' FILE_APPEND_DATA makes each write an atomic append.
func openAppend(d *atomicfs.Dir) (*os.File, error) {
	return d.OpenFile(FileName, os.O_WRONLY|os.O_APPEND|os.O_CREATE, FileMode)
}

func openRead(d *atomicfs.Dir, name string) (*os.File, error) {
	return d.OpenFile(name, os.O_RDONLY, 0)
}

func writeOnce(f *os.File, b []byte) (int, error) { return f.Write(b) }

// The locks cover one byte far beyond any real end of file: Windows locks
// are mandatory, and a lock over the data would block other appenders.
const lockOffset = 1 << 62

func lockFile(f *os.File, flags uint32) error {
	ol := windows.Overlapped{Offset: uint32(lockOffset & 0xffffffff), OffsetHigh: uint32(lockOffset >> 32)}
	return windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, &ol)
}

func lockShared(f *os.File) error     { return lockFile(f, 0) }
func lockSharedWait(f *os.File) error { return lockFile(f, 0) }

func tryLockExclusive(f *os.File) (bool, error) {
	err := lockFile(f, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return false, nil
	}
	return err == nil, err
}

func unlock(f *os.File) error {
	ol := windows.Overlapped{Offset: uint32(lockOffset & 0xffffffff), OffsetHigh: uint32(lockOffset >> 32)}
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &ol)
}
