//go:build darwin

package proc

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// StartSupported reports whether this platform can read process start times.
const StartSupported = true

// sZomb is SZOMB from <sys/proc.h>: exited, awaiting collection.
const sZomb = 5

// StartToken returns an opaque string identifying the start of process pid
// ("<sec>.<usec>" of its start time), so a reused pid can be detected. It
// returns ErrNoProcess if pid does not exist or is a zombie.
func StartToken(pid int) (string, error) {
	if pid <= 0 {
		return "", invalidPID(pid)
	}
	if pid > maxPID {
		return "", ErrNoProcess
	}
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || kp == nil || int(kp.Proc.P_pid) != pid {
		// A missing pid comes back as a short (empty) answer, which x/sys
		// reports as EIO; confirm with kill(2) rather than guess.
		if perr := unix.Kill(pid, 0); errors.Is(perr, unix.ESRCH) {
			return "", ErrNoProcess
		}
		if err == nil {
			err = errors.New("unexpected kinfo_proc")
		}
		return "", fmt.Errorf("proc: sysctl kern.proc.pid.%d: %w", pid, err)
	}
	if kp.Proc.P_stat == sZomb {
		return "", ErrNoProcess
	}
	tv := kp.Proc.P_starttime
	return fmt.Sprintf("%d.%06d", tv.Sec, tv.Usec), nil
}
