//go:build linux || darwin

package proc

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

func TestLivenessString(t *testing.T) {
	for l, want := range map[Liveness]string{
		Unknown: "unknown", Alive: "alive", Dead: "dead", Liveness(7): "Liveness(7)",
	} {
		if got := l.String(); got != want {
			t.Errorf("Liveness(%d).String() = %q, want %q", int(l), got, want)
		}
	}
}

func TestHostname(t *testing.T) {
	want, err := os.Hostname()
	if err != nil || want == "" {
		want = "unknown-host"
	}
	if got := Hostname(); got != want {
		t.Errorf("Hostname() = %q, want %q", got, want)
	}
}

func TestSelfAlive(t *testing.T) {
	if !StartSupported {
		t.Fatal("StartSupported is false on a supported platform")
	}
	pid := os.Getpid()
	tok, err := StartToken(pid)
	if err != nil {
		t.Fatalf("StartToken(self): %v", err)
	}
	if tok == "" {
		t.Fatal("StartToken(self) is empty")
	}
	if again, err := StartToken(pid); err != nil || again != tok {
		t.Fatalf("StartToken(self) not stable: %q, %v; first %q", again, err, tok)
	}
	if got := Check(pid, tok); got != Alive {
		t.Errorf("Check(self, token) = %v, want alive", got)
	}
	if got := Check(pid, ""); got != Alive {
		t.Errorf("Check(self, \"\") = %v, want alive", got)
	}
	if got := Check(pid, tok+"0"); got != Dead {
		t.Errorf("Check(self, other token) = %v, want dead", got)
	}
}

func TestInvalidPID(t *testing.T) {
	for _, pid := range []int{0, -1, -12345} {
		if got := Check(pid, ""); got != Unknown {
			t.Errorf("Check(%d) = %v, want unknown", pid, got)
		}
		if _, err := StartToken(pid); err == nil || errors.Is(err, ErrNoProcess) {
			t.Errorf("StartToken(%d) error = %v, want an invalid-pid error", pid, err)
		}
	}
}

func TestImpossiblePID(t *testing.T) {
	pid := int(int64(maxPID) + 1) // int is 64-bit on every platform we test
	if _, err := StartToken(pid); !errors.Is(err, ErrNoProcess) {
		t.Errorf("StartToken(%d) error = %v, want ErrNoProcess", pid, err)
	}
	if got := Check(pid, ""); got != Dead {
		t.Errorf("Check(%d) = %v, want dead", pid, got)
	}
}

// TestReapedChild records a child's token while it runs (it blocks on
// stdin), then ends and reaps it.
//
// A token identifies a process only together with its pid: the start time
// in it has clock-tick resolution (10 ms on Linux), so two processes started
// in the same tick carry the same token. This test therefore never compares
// the child's token with another process's (its parent, the test binary,
// often starts in the same tick when the test runs first).
func TestReapedChild(t *testing.T) {
	cmd := exec.Command("cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	tok, err := StartToken(pid)
	if err != nil {
		t.Fatalf("StartToken(running child): %v", err)
	}
	if got := Check(pid, tok); got != Alive {
		t.Errorf("Check(running child) = %v, want alive", got)
	}
	if err := stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := Check(pid, tok); got != Dead {
		t.Errorf("Check(reaped child, token) = %v, want dead", got)
	}
	if got := Check(pid, ""); got != Dead {
		t.Errorf("Check(reaped child) = %v, want dead", got)
	}
	if _, err := StartToken(pid); !errors.Is(err, ErrNoProcess) {
		t.Errorf("StartToken(reaped child) error = %v, want ErrNoProcess", err)
	}
}

func TestRunTrue(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if got := Check(cmd.Process.Pid, ""); got != Dead {
		t.Errorf("Check(exited true) = %v, want dead", got)
	}
}

// TestZombieChild checks that an exited but unreaped child counts as dead.
func TestZombieChild(t *testing.T) {
	cmd := exec.Command("sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cmd.Wait(); err != nil {
			t.Errorf("reaping zombie: %v", err)
		}
	})
	pid := cmd.Process.Pid
	waitExitedNoReap(t, pid)
	if got := Check(pid, ""); got != Dead {
		t.Errorf("Check(zombie) = %v, want dead", got)
	}
	if _, err := StartToken(pid); !errors.Is(err, ErrNoProcess) {
		t.Errorf("StartToken(zombie) error = %v, want ErrNoProcess", err)
	}
}
