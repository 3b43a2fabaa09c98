//go:build unix

package audit

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lokt-dev/lokt/internal/atomicfs"
)

// RotationSupported reports whether audit.log is rotated on this platform:
// unix can rename a file that other processes hold open.
const RotationSupported = true

// openAppend opens (creating, with CreateMode) the log in the root d for
// appending. The Dir refuses a planted symlink (which could redirect
// lokt's writes) and a FIFO or device (which could hang it) before any I/O.
// The mode of an existing file is left alone. O_RDWR rather than O_WRONLY:
// where the kernel emulates flock(2) with byte-range locks (NFS), a shared
// lock needs a descriptor open for reading.
func openAppend(d *atomicfs.Dir) (*os.File, error) {
	return d.OpenFile(FileName, os.O_RDWR|os.O_APPEND|os.O_CREATE, CreateMode(d.Path()))
}

// openRead opens a log file of the root d for reading, with the same care.
func openRead(d *atomicfs.Dir, name string) (*os.File, error) {
	return d.OpenFile(name, os.O_RDONLY, 0)
}

// writeOnce issues exactly one write(2): the append is atomic with respect
// to other appenders only as one system call, and os.File.Write would retry
// a short write with a second one that could land after another process's
// line.
func writeOnce(f *os.File, b []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for {
			n, werr = unix.Write(int(fd), b)
			if !errors.Is(werr, unix.EINTR) {
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	return max(n, 0), werr
}

// sharedLockPatience bounds how long a writer waits for a rotation (which
// holds the exclusive lock for a few renames) before giving up on the line:
// a lock operation must never hang on its audit trail, even if a rotating
// process was stopped mid-rotation.
var sharedLockPatience = 2 * time.Second

// lockShared takes a shared flock, retrying a busy lock with short backoff
// for at most sharedLockPatience.
func lockShared(f *os.File) error {
	deadline := time.Now().Add(sharedLockPatience)
	delay := 100 * time.Microsecond
	for {
		err := flock(f, unix.LOCK_SH|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("the audit log stayed locked by a rotating process")
		}
		time.Sleep(delay)
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// lockSharedWait takes a shared flock, waiting as long as it takes (for
// readers, which block no lock operation).
func lockSharedWait(f *os.File) error { return flock(f, unix.LOCK_SH) }

func tryLockExclusive(f *os.File) (bool, error) {
	err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

func unlock(f *os.File) error { return flock(f, unix.LOCK_UN) }

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
