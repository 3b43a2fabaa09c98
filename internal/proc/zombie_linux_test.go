package proc

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// waitExitedNoReap blocks until child pid has exited, leaving it a zombie:
// WNOWAIT makes waitid report the exit without collecting it.
func waitExitedNoReap(t *testing.T, pid int) {
	t.Helper()
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("waitid(%d): %v", pid, err)
		}
		return
	}
}
