package proc

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitExitedNoReap waits until child pid is a zombie without reaping it.
// Darwin's wait4 has no WNOWAIT, so poll its state, bounded by a deadline.
func waitExitedNoReap(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
		if err != nil {
			t.Fatalf("sysctl kern.proc.pid.%d: %v", pid, err)
		}
		if kp.Proc.P_stat == sZomb {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not exit within 10s", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
