//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// handoffBound is far above what a woken waiter needs (a few ms, see
// bench/) so that a loaded CI machine running race-built binaries passes,
// yet below what a waiter polling at its 500ms backoff cap would need
// on average.
const handoffBound = 400 * time.Millisecond

// startHolder starts a guard on name whose child holds until stdin closes.
func startHolder(t *testing.T, root, name string) *bgLokt {
	t.Helper()
	p := startLokt(t, env(root, childModeEnv+"=block"), "guard", name, "--", childCmd(t))
	readyPID(t, p)
	return p
}

// startWaiter starts a waiting guard and returns once it is waiting: its
// first progress line (after ~1s) proves it is past its first attempt.
func startWaiter(t *testing.T, root, name string, args ...string) *bgLokt {
	t.Helper()
	w := startLokt(t, env(root), append([]string{"guard", name, "--wait", "--timeout", "1m"}, args...)...)
	w.stderr.expect(t, "waiting", 30*time.Second)
	return w
}

func TestWaitHandoff(t *testing.T) {
	root := newRoot(t)
	h := startHolder(t, root, "x")
	w := startWaiter(t, root, "x", "--", "echo", "acquired")
	if line := w.stderr.expect(t, "waiting", time.Second); !strings.Contains(line, "held by tester@") || !strings.Contains(line, "pid") {
		t.Errorf("progress line does not say who holds the lock: %q", line)
	}
	start := time.Now()
	_ = h.stdin.Close() // the holder's child exits; its guard releases
	w.stdout.expect(t, "acquired", 30*time.Second)
	d := time.Since(start)
	t.Logf("release -> waiter's command running: %s", d)
	if d > handoffBound {
		t.Errorf("waiter took %s after the release, want under %s", d, handoffBound)
	}
	if code := h.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("holder exit %d: %s", code, h.stderr.all())
	}
	if code := w.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("waiter exit %d: %s", code, w.stderr.all())
	}
	assertReleased(t, root, "x")
}

// A holder that dies without releasing wakes the waiters through the
// liveness recheck, at the latest after the backoff cap.
func TestWaitHolderDies(t *testing.T) {
	root := newRoot(t)
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	if r := run(t, root, "lock", "x", "--pid", strconv.Itoa(sleeper.Process.Pid)); r.code != 0 {
		t.Fatalf("lock: exit %d: %s", r.code, r.stderr)
	}
	w := startWaiter(t, root, "x", "--", "echo", "acquired")
	start := time.Now()
	if err := sleeper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sleeper.Wait()
	w.stdout.expect(t, "acquired", 30*time.Second)
	d := time.Since(start)
	t.Logf("holder death -> waiter's command running: %s", d)
	if d > 3*time.Second {
		t.Errorf("waiter noticed the dead holder after %s, want within the 500ms backoff cap (+ slack)", d)
	}
	if code := w.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("waiter exit %d: %s", code, w.stderr.all())
	}
}

func TestWaitTimeout(t *testing.T) {
	root := newRoot(t)
	h := startHolder(t, root, "x")
	for _, quiet := range []bool{false, true} {
		t.Run("quiet="+strconv.FormatBool(quiet), func(t *testing.T) {
			t.Parallel()
			args := []string{"guard", "x", "--wait", "--timeout", "2s"}
			if quiet {
				args = append(args, "--quiet")
			}
			start := time.Now()
			r := run(t, root, append(args, "--", "echo", "ran")...)
			d := time.Since(start)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", r.code, r.stderr)
			}
			if d < 2*time.Second || d > 15*time.Second {
				t.Errorf("gave up after %s, want about 2s", d)
			}
			if r.stdout != "" {
				t.Errorf("the command ran, or guard wrote to stdout: %q", r.stdout)
			}
			if quiet {
				// --quiet: a held lock, after waiting too, prints nothing.
				if r.stderr != "" {
					t.Errorf("--quiet printed %q", r.stderr)
				}
				return
			}
			pid := strconv.Itoa(h.cmd.Process.Pid)
			if !strings.Contains(r.stderr, "gave up after waiting 2s") || !strings.Contains(r.stderr, "pid "+pid) {
				t.Errorf("timeout message does not name the holder (pid %s): %q", pid, r.stderr)
			}
			if !strings.Contains(r.stderr, "waiting 1s") {
				t.Errorf("no progress shown: %q", r.stderr)
			}
		})
	}
}

// Ctrl-C or SIGTERM ends a wait cleanly: 128+N, nothing run, nothing left
// behind, the holder's lock untouched.
func TestWaitInterrupted(t *testing.T) {
	cases := []struct {
		cmd  string
		sig  syscall.Signal
		code int
	}{{"guard", syscall.SIGINT, 130}, {"guard", syscall.SIGTERM, 143}, {"lock", syscall.SIGINT, 130}}
	for _, tc := range cases {
		t.Run(tc.cmd+" "+tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			root := newRoot(t)
			h := startHolder(t, root, "x")
			before, _ := readLock(t, root, "x")
			args := []string{tc.cmd, "x", "--wait"}
			if tc.cmd == "guard" {
				args = append(args, "--", "echo", "ran")
			}
			w := startLokt(t, env(root), args...)
			w.stderr.expect(t, "waiting", 30*time.Second)
			w.signal(t, tc.sig)
			if code := w.finish(t, 30*time.Second); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, w.stderr.all())
			}
			if out := w.stdout.all(); out != "" {
				t.Errorf("interrupted waiter printed %q", out)
			}
			if after, _ := readLock(t, root, "x"); after.LockID != before.LockID {
				t.Errorf("holder's lock changed: %+v -> %+v", before, after)
			}
			_ = h.stdin.Close()
			if code := h.finish(t, 30*time.Second); code != 0 {
				t.Fatalf("holder exit %d", code)
			}
			entries, err := os.ReadDir(filepath.Join(root, "locks"))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				// Guard files (.lck) and waiting-line files (.wait) stay by design.
				if !strings.HasSuffix(e.Name(), ".lck") && !strings.HasSuffix(e.Name(), ".wait") {
					t.Errorf("left behind: locks/%s", e.Name())
				}
			}
		})
	}
}
