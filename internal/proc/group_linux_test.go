package proc

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// startGroup starts `sh -c script` as the leader of a new process group.
func startGroup(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	// The script says "ready" once its members exist.
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("group did not start: %q, %v", buf, err)
	}
	return cmd
}

func TestGroupLeaderAlive(t *testing.T) {
	cmd := startGroup(t, "echo ready; exec sleep 60")
	pid := cmd.Process.Pid
	tok, err := StartToken(pid)
	if err != nil {
		t.Fatal(err)
	}
	if got := Group(pid, tok); got != Alive {
		t.Errorf("Group of a running leader = %s, want alive", got)
	}
	if got := Group(pid, tok+"0"); got != Dead {
		t.Errorf("Group with another leader start = %s, want dead (the pid was reused)", got)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if got := Group(pid, tok); got != Dead {
		t.Errorf("Group of a group that is gone = %s, want dead", got)
	}
}

// A group whose leader exited lives on in its members; members that have
// exited but are not reaped (zombies) do not count.
func TestGroupWithoutLeader(t *testing.T) {
	leader := startGroup(t, "echo ready; exec sleep 60")
	pgid := leader.Process.Pid
	tok, err := StartToken(pgid)
	if err != nil {
		t.Fatal(err)
	}
	// A member of the leader's group that this test reaps itself.
	member := exec.Command("sleep", "60")
	member.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := member.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = member.Process.Kill(); _ = member.Wait() })
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	_ = leader.Wait()
	if got := Group(pgid, tok); got != Alive {
		t.Errorf("Group with its leader gone and a member running = %s, want alive", got)
	}
	_ = member.Process.Kill()
	waitExitedNoReap(t, member.Process.Pid)
	if got := Group(pgid, tok); got != Dead {
		t.Errorf("Group with only a zombie left = %s, want dead", got)
	}
	_ = member.Wait()
	if got := Group(pgid, tok); got != Dead {
		t.Errorf("Group with no member = %s, want dead", got)
	}
}

func TestGroupInvalid(t *testing.T) {
	for _, pgid := range []int{-5, 0, 1, maxPID + 1} {
		if got := Group(pgid, ""); got != Unknown {
			t.Errorf("Group(%d) = %s, want unknown", pgid, got)
		}
	}
}

func TestNamespace(t *testing.T) {
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Skipf("no /proc/self/ns/pid: %v", err)
	}
	if ns := Namespace(); ns == "" || !strings.Contains(link, ns) {
		t.Errorf("Namespace() = %q, link %q", ns, link)
	}
	if !procIsOurs() {
		t.Error("procIsOurs() is false for the test's own /proc")
	}
}

func TestStateAndGroup(t *testing.T) {
	state, group, ok := stateAndGroup([]byte("12 (a) b) c) S 1 77 77 0"))
	if !ok || state != 'S' || group != 77 {
		t.Errorf("stateAndGroup = %c %d %v", state, group, ok)
	}
	for _, bad := range []string{"no paren", "1 (x) S 1", "1 (x) SS 1 2", "1 (x) S 1 x"} {
		if _, _, ok := stateAndGroup([]byte(bad)); ok {
			t.Errorf("stateAndGroup(%q) accepted", bad)
		}
	}
}
