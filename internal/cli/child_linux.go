package cli

import (
	"errors"

	"golang.org/x/sys/unix"
)

// awaitExit blocks until pid has exited and reports true, leaving it
// unreaped: the zombie keeps the pid.
func awaitExit(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err == nil
		}
	}
}
