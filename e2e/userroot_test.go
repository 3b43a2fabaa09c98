//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/testbin"
)

// userRootEnv is a lokt environment with no LOKT_ROOT and a private HOME,
// so that outside git the per-user root under that HOME is chosen.
func userRootEnv(home string, extra ...string) []string {
	return append(withoutRoot(env("")), append([]string{"HOME=" + home, "XDG_STATE_HOME="}, extra...)...)
}

// runIn runs lokt in dir with envv.
func runIn(t *testing.T, dir string, envv []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(testbin.Path(t), args...)
	cmd.Dir = dir
	cmd.Env = envv
	return wait(t, cmd)
}

// TestUserRootFromTwoDirectories: outside git and without a .lokt above,
// two guards of one name started from two directories (two cron entries)
// meet in the user's machine-wide root, so the second is refused while the
// first runs, and no .lokt appears in either directory.
func TestUserRootFromTwoDirectories(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home")
	dirA := filepath.Join(base, "jobs", "a")
	dirB := filepath.Join(base, "elsewhere", "b")
	for _, d := range []string{home, dirA, dirB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	envv := userRootEnv(home)
	st := runIn(t, dirB, envv, "status", "--json")
	var loc struct {
		Root   string `json:"root"`
		Source string `json:"root_source"`
		Reason string `json:"root_reason"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &loc); err != nil {
		t.Fatalf("status --json: %v: %s %s", err, st.stdout, st.stderr)
	}
	if loc.Source != "user" {
		t.Skipf("%s is inside a git repository or below a .lokt (root %s from %s); the fallback cannot be tested here", base, loc.Root, loc.Source)
	}
	want := filepath.Join(home, ".local", "state", "lokt")
	if loc.Root != want || !strings.Contains(loc.Reason, "machine-wide") {
		t.Fatalf("status --json root = %+v, want %s", loc, want)
	}

	child := childCmd(t)
	t.Chdir(dirA) // the first guard starts in dirA
	first := startLokt(t, append(envv, childModeEnv+"=block"), "guard", "backup", "--", child)
	readyPID(t, first)
	for _, dir := range []string{dirA, dirB} {
		r := runIn(t, dir, envv, "guard", "backup", "--", "true")
		if r.code != 2 || !strings.Contains(r.stderr, `"backup" is held`) {
			t.Fatalf("guard from %s: exit %d, want 2 (one root for the user): %s", dir, r.code, r.stderr)
		}
	}
	_ = first.stdin.Close()
	if code := first.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("first guard exited %d: %s", code, first.stderr.all())
	}
	if r := runIn(t, dirB, envv, "guard", "backup", "--", "true"); r.code != 0 {
		t.Fatalf("guard from %s after release: %d %s", dirB, r.code, r.stderr)
	}
	for _, d := range []string{dirA, dirB} {
		if _, err := os.Lstat(filepath.Join(d, ".lokt")); err == nil {
			t.Errorf("a .lokt was created in %s", d)
		}
	}
	fi, err := os.Stat(want)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("per-user root: %v, mode %v; want 0700", err, fi.Mode())
	}

	// $XDG_STATE_HOME moves it, as the XDG rules say.
	xdg := filepath.Join(base, "xdg")
	r := runIn(t, dirA, userRootEnv(home, "XDG_STATE_HOME="+xdg), "lock", "x", "--pid", "0", "--ttl", "1m")
	if r.code != 0 {
		t.Fatalf("lock with XDG_STATE_HOME: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(xdg, "lokt", "locks", "x.json")); err != nil {
		t.Fatalf("XDG_STATE_HOME not used: %v", err)
	}
}

// TestDotLoktSymlinkRefused: two subdirectories under a .lokt symlink do
// not each get a root of their own: lokt refuses, naming the link.
func TestDotLoktSymlinkRefused(t *testing.T) {
	base := t.TempDir()
	proj := filepath.Join(base, "proj")
	for _, d := range []string{filepath.Join(proj, "a"), filepath.Join(proj, "b"), filepath.Join(base, "shared")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(proj, ".lokt")
	if err := os.Symlink(filepath.Join(base, "shared"), link); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"a", "b"} {
		r := runIn(t, filepath.Join(proj, sub), userRootEnv(filepath.Join(base, "home")), "guard", "g", "--", "true")
		if r.code != 1 || !strings.Contains(r.stderr, link+" is a symlink") || !strings.Contains(r.stderr, "LOKT_ROOT=") {
			t.Fatalf("guard in %s: exit %d, want 1 naming %s: %s", sub, r.code, link, r.stderr)
		}
		if _, err := os.Lstat(filepath.Join(proj, sub, ".lokt")); err == nil {
			t.Fatalf("a second root was created in %s", sub)
		}
	}
}

// TestHolderPIDOutlivesShell: with LOKT_HOLDER_PID exported by a harness,
// a lock taken from a shell that exits at once lives as long as the
// harness, and goes stale when the harness ends.
func TestHolderPIDOutlivesShell(t *testing.T) {
	root := newRoot(t)
	harness := exec.Command("sleep", "600")
	if err := harness.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = harness.Process.Kill(); _ = harness.Wait() })
	bin := testbin.Path(t)
	sh := exec.Command("sh", "-c", `out=$("$0" lock agent-task --json | cat) && echo "$out"`, bin)
	sh.Env = env(root, "LOKT_HOLDER_PID="+itoa(harness.Process.Pid))
	if r := wait(t, sh); r.code != 0 || !strings.Contains(r.stdout, `"pid": `+itoa(harness.Process.Pid)) {
		t.Fatalf("lock in $(... | ...): %d %s %s", r.code, r.stdout, r.stderr)
	}
	// The shell is gone; the lock is still live.
	if r := run(t, root, "lock", "agent-task"); r.code != 2 {
		t.Fatalf("lock after the shell exited: %d, want 2 (held for the harness): %s", r.code, r.stderr)
	}
	_ = harness.Process.Kill()
	_ = harness.Wait()
	if r := run(t, root, "lock", "agent-task", "--pid", "0", "--ttl", "1m"); r.code != 0 {
		t.Fatalf("lock after the harness ended: %d, want 0 (its lock is stale): %s", r.code, r.stderr)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
