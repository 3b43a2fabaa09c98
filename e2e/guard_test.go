//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/internal/testbin"
)

// The test binary doubles as the command guard runs, so a test can see
// exactly when the child is up and which signals reach it. It is selected
// by LOKT_E2E_CHILD before any test machinery starts.
const childModeEnv = "LOKT_E2E_CHILD"

func init() {
	switch os.Getenv(childModeEnv) {
	case "":
		return
	case "block":
		// "ready PID", then hold until stdin is closed.
		fmt.Printf("ready %d\n", os.Getpid())
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "signals":
		// "ready PID", then report the first relayable signal and exit 0.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		fmt.Printf("ready %d\n", os.Getpid())
		fmt.Printf("got %v\n", <-ch)
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "unknown %s\n", childModeEnv)
	os.Exit(99)
}

// childCmd is the argv of a helper child in mode ("block" or "signals");
// the mode travels in the environment given to the guard.
func childCmd(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// bgLokt is a lokt process running in the background, whose output is read
// line by line as it arrives, so tests wait on what it prints rather than
// on the clock.
type bgLokt struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *lineFeed
	stderr *lineFeed
	done   chan struct{}
	code   int
}

// startLokt starts lokt args with env in its own process group (so a test
// run from a terminal behaves as under CI, and cleanup reaches the child).
func startLokt(t *testing.T, envv []string, args ...string) *bgLokt {
	t.Helper()
	cmd := exec.Command(testbin.Path(t), args...)
	cmd.Env = envv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &bgLokt{cmd: cmd, stdin: stdin, stdout: newLineFeed(outR), stderr: newLineFeed(errR), done: make(chan struct{})}
	go func() {
		// Wait only after the pipes are drained: exec.Cmd closes them.
		<-p.stdout.eof
		<-p.stderr.eof
		err := cmd.Wait()
		p.code = statusOf(err)
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = stdin.Close()
		<-p.done
	})
	return p
}

// finish waits for the process to exit and returns its code (-1 if killed
// by a signal).
func (p *bgLokt) finish(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("lokt %v still running after %s\nstdout: %s\nstderr: %s", p.cmd.Args[1:], timeout, p.stdout.all(), p.stderr.all())
		return 0
	}
}

func (p *bgLokt) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// lineFeed collects a stream's lines and lets a test wait for one.
type lineFeed struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced at every new line
	eof   chan struct{}
}

func newLineFeed(r io.Reader) *lineFeed {
	f := &lineFeed{more: make(chan struct{}), eof: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, sc.Text())
			close(f.more)
			f.more = make(chan struct{})
			f.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r)
		close(f.eof)
	}()
	return f
}

// expect waits for a line containing substr and returns it.
func (f *lineFeed) expect(t *testing.T, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		f.mu.Lock()
		lines, more := f.lines, f.more
		f.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if strings.Contains(lines[seen], substr) {
				return lines[seen]
			}
		}
		select {
		case <-more:
		case <-f.eof:
			f.mu.Lock()
			n := len(f.lines)
			f.mu.Unlock()
			if n == seen {
				t.Fatalf("stream ended without a line containing %q; got:\n%s", substr, f.all())
			}
		case <-deadline:
			t.Fatalf("no line containing %q after %s; got:\n%s", substr, timeout, f.all())
		}
	}
}

func (f *lineFeed) all() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.lines, "\n")
}

// readyPID waits for a helper child's "ready PID" line.
func readyPID(t *testing.T, p *bgLokt) int {
	t.Helper()
	line := p.stdout.expect(t, "ready ", 30*time.Second)
	pid, err := strconv.Atoi(strings.TrimPrefix(line, "ready "))
	if err != nil {
		t.Fatalf("bad ready line %q", line)
	}
	return pid
}

// lockRecord is the part of a lock file these tests look at.
type lockRecord struct {
	LockID    string `json:"lock_id"`
	PID       int    `json:"pid"`
	ChildPID  int    `json:"child_pid"`
	RenewedAt string `json:"renewed_at"`
}

// readLock returns the lock file of name, or ok=false if there is none.
// statusChildPID is the command pid `lokt status NAME --json` shows for a
// lock (guard notes it with its evidence, not in the record), 0 if none.
func statusChildPID(t *testing.T, root, name string) int {
	t.Helper()
	r := run(t, root, "status", name, "--json")
	var out struct {
		Locks []struct {
			ChildPID int `json:"child_pid"`
		} `json:"locks"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || len(out.Locks) != 1 {
		return 0
	}
	return out.Locks[0].ChildPID
}

func readLock(t *testing.T, root, name string) (rec lockRecord, ok bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "locks", name+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return rec, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("lock file of %s: %v\n%s", name, err, b)
	}
	return rec, true
}

func assertReleased(t *testing.T, root, name string) {
	t.Helper()
	if rec, ok := readLock(t, root, name); ok {
		t.Fatalf("lock %q still held after guard exited: %+v", name, rec)
	}
}

// pollFor waits for cond, for states that announce themselves by no event
// a test can wait on (a record written, a process gone).
func pollFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// auditCount counts the events of one type in the root's audit log.
func auditCount(t *testing.T, root, event string) int {
	t.Helper()
	log, err := os.ReadFile(filepath.Join(root, "audit.log"))
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	return bytes.Count(log, []byte(`"event":"`+event+`"`))
}

func processGone(pid int) bool {
	_, err := proc.StartToken(pid)
	return errors.Is(err, proc.ErrNoProcess)
}

func TestGuardExitCodesAndRelease(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		cmd    []string
		code   int
		stderr string
	}{
		{"exit 0", []string{"true"}, 0, ""},
		{"exit 7", []string{"sh", "-c", "exit 7"}, 7, ""},
		{"false", []string{"false"}, 1, ""},
		{"killed by SIGTERM", []string{"sh", "-c", "kill -TERM $$"}, 143, ""},
		{"killed by SIGKILL", []string{"sh", "-c", "kill -KILL $$"}, 137, ""},
		{"not found", []string{"lokt-no-such-command"}, 127, "command not found"},
		{"not executable", []string{notExec}, 126, "cannot execute"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := newRoot(t)
			r := run(t, root, append([]string{"guard", "x", "--"}, tc.cmd...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, tc.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("guard printed on stdout: %q", r.stdout)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tc.stderr)
			}
			assertReleased(t, root, "x")
			if r := run(t, root, "guard", "x", "--", "true"); r.code != 0 {
				t.Fatalf("next guard: exit %d: %s", r.code, r.stderr)
			}
		})
	}
}

// The child's output is all there is on stdout, and it can find its lock.
func TestGuardStdoutAndEnvironment(t *testing.T) {
	root := newRoot(t)
	cmd := exec.Command(testbin.Path(t), "guard", "x", "--", "sh", "-c",
		`echo "$LOKT_LOCK|$LOKT_LOCK_ID|$LOKT_ROOT"; cat; cat "$LOKT_ROOT/locks/$LOKT_LOCK.json"`)
	cmd.Env = env(root, "LOKT_LOCK_ID=stale-from-outside")
	cmd.Stdin = strings.NewReader("from stdin\n")
	r := wait(t, cmd)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	first, rest, _ := strings.Cut(r.stdout, "\n")
	parts := strings.Split(first, "|")
	if len(parts) != 3 || parts[0] != "x" || parts[2] != root {
		t.Fatalf("child saw LOKT_LOCK|LOKT_LOCK_ID|LOKT_ROOT = %q, want x|<id>|%s", first, root)
	}
	stdin, record, _ := strings.Cut(rest, "\n")
	if stdin != "from stdin" {
		t.Errorf("child's stdin gave %q", stdin)
	}
	var rec lockRecord
	if err := json.Unmarshal([]byte(record), &rec); err != nil {
		t.Fatalf("stdout holds more than the child's output: %v\n%s", err, r.stdout)
	}
	if rec.LockID != parts[1] {
		t.Errorf("LOKT_LOCK_ID %q, record has %q", parts[1], rec.LockID)
	}
	assertReleased(t, root, "x")
}

func TestGuardRelaysSignals(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}, {syscall.SIGHUP, 129}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			root := newRoot(t)
			p := startLokt(t, env(root, childModeEnv+"=signals"), "guard", "x", "--ttl", "30s", "--", childCmd(t))
			readyPID(t, p)
			p.signal(t, tc.sig)
			p.stdout.expect(t, "got "+tc.sig.String(), 30*time.Second)
			if code := p.finish(t, 30*time.Second); code != tc.code {
				t.Fatalf("guard exit %d, want %d; stderr: %s", code, tc.code, p.stderr.all())
			}
			assertReleased(t, root, "x")
		})
	}
}

// A guard killed outright cannot release: its child must not outlive it
// with the lock free, and once both are gone the lock is free at once,
// whatever its TTL.
func TestGuardSIGKILLed(t *testing.T) {
	root := newRoot(t)
	p := startLokt(t, env(root, childModeEnv+"=block"), "guard", "x", "--ttl", "1h", "--", childCmd(t))
	child := readyPID(t, p)
	pollFor(t, 10*time.Second, "the child recorded as co-holder", func() bool {
		return statusChildPID(t, root, "x") == child
	})
	p.signal(t, syscall.SIGKILL)
	if code := p.finish(t, 30*time.Second); code != -1 {
		t.Fatalf("guard exit %d after SIGKILL", code)
	}
	if runtime.GOOS == "linux" {
		// The parent-death signal takes the child down with guard.
		pollFor(t, 10*time.Second, "the child to die with its guard", func() bool { return processGone(child) })
	} else {
		// No parent-death signal: the child keeps the lock held while it lives.
		if r := run(t, root, "guard", "x", "--", "true"); r.code != 2 {
			t.Fatalf("lock taken while the dead guard's child still runs: exit %d: %s", r.code, r.stderr)
		}
		if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		pollFor(t, 10*time.Second, "the child to exit", func() bool { return processGone(child) })
	}
	start := time.Now()
	r := run(t, root, "guard", "x", "--", "true")
	if r.code != 0 {
		t.Fatalf("lock of a SIGKILLed guard and its dead child not broken: exit %d: %s", r.code, r.stderr)
	}
	t.Logf("next guard took the abandoned lock in %s", time.Since(start))
}

func TestGuardNested(t *testing.T) {
	lokt := testbin.Path(t)
	t.Run("by environment", func(t *testing.T) {
		t.Parallel()
		root := newRoot(t)
		start := time.Now()
		r := run(t, root, "guard", "x", "--", lokt, "guard", "x", "--wait", "--", "true")
		if r.code != 2 || !strings.Contains(r.stderr, "ancestor") {
			t.Fatalf("nested guard: exit %d, stderr %q; want 2 naming the ancestor", r.code, r.stderr)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("nested guard took %s to give up", d)
		}
	})
	t.Run("by ancestry", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("process ancestry is read on Linux only")
		}
		t.Parallel()
		root := newRoot(t)
		r := run(t, root, "guard", "x", "--", "env", "-u", "LOKT_LOCK_ID", lokt, "guard", "x", "--wait", "--", "true")
		if r.code != 2 || !strings.Contains(r.stderr, "ancestor") {
			t.Fatalf("nested guard without LOKT_LOCK_ID: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("lock inside guard", func(t *testing.T) {
		t.Parallel()
		root := newRoot(t)
		r := run(t, root, "guard", "x", "--", "sh", "-c", `"$0" lock x --wait`, lokt)
		if r.code != 2 || !strings.Contains(r.stderr, "ancestor") {
			t.Fatalf("lock --wait inside guard of the same name: exit %d, stderr %q; want 2 naming the ancestor", r.code, r.stderr)
		}
	})
	t.Run("sibling with stale environment waits", func(t *testing.T) {
		t.Parallel()
		root := newRoot(t)
		holder := startLokt(t, env(root, childModeEnv+"=block"), "guard", "x", "--", childCmd(t))
		readyPID(t, holder)
		cmd := exec.Command(lokt, "guard", "x", "--wait", "--timeout", "300ms", "--", "true")
		cmd.Env = env(root, "LOKT_LOCK=x", "LOKT_LOCK_ID=0123456789abcdef0123456789abcdef")
		r := wait(t, cmd)
		if r.code != 2 || strings.Contains(r.stderr, "ancestor") || !strings.Contains(r.stderr, "gave up") {
			t.Fatalf("sibling guard: exit %d, stderr %q; want a plain timeout", r.code, r.stderr)
		}
		_ = holder.stdin.Close()
		if code := holder.finish(t, 30*time.Second); code != 0 {
			t.Fatalf("holder exit %d", code)
		}
	})
}

func TestGuardLostLock(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill-on-lost=%v", kill), func(t *testing.T) {
			t.Parallel()
			root := newRoot(t)
			args := []string{"guard", "x", "--ttl", "1s"}
			if kill {
				args = append(args, "--kill-on-lost")
			}
			p := startLokt(t, env(root, childModeEnv+"=block"), append(args, "--", childCmd(t))...)
			readyPID(t, p)
			if r := run(t, root, "unlock", "x", "--force"); r.code != 0 {
				t.Fatalf("unlock --force: exit %d: %s", r.code, r.stderr)
			}
			// Someone else takes it; the guard must leave that lock alone.
			if r := run(t, root, "lock", "x", "--pid", "0", "--ttl", "1m"); r.code != 0 {
				t.Fatalf("lock after force-break: exit %d: %s", r.code, r.stderr)
			}
			other, _ := readLock(t, root, "x")
			p.stderr.expect(t, "WARNING: lock lost", 30*time.Second)
			want := 143 // the child, stopped with SIGTERM
			if !kill {
				p.stderr.expect(t, "keeps running", 5*time.Second)
				_ = p.stdin.Close()
				want = 0
			}
			if code := p.finish(t, 30*time.Second); code != want {
				t.Fatalf("guard exit %d, want %d; stderr: %s", code, want, p.stderr.all())
			}
			if n := strings.Count(p.stderr.all(), "WARNING: lock lost"); n != 1 {
				t.Errorf("loss reported %d times:\n%s", n, p.stderr.all())
			}
			if rec, ok := readLock(t, root, "x"); !ok || rec.LockID != other.LockID {
				t.Fatalf("guard touched the new holder's lock: %+v (had %+v)", rec, other)
			}
			if n := auditCount(t, root, "lost"); n != 1 {
				t.Errorf("audit log has %d lost events, want 1", n)
			}
		})
	}
}

// Renewal keeps a short-TTL lock live for a long command: a contender that
// breaks only stale locks never gets it.
func TestGuardRenewalUnderContention(t *testing.T) {
	root := newRoot(t)
	p := startLokt(t, env(root), "guard", "x", "--ttl", "1s", "--", "sleep", "5")
	pollFor(t, 10*time.Second, "the guard's lock", func() bool { _, ok := readLock(t, root, "x"); return ok })
	renewals := map[string]bool{}
	attempts := 0
	for running := true; running; {
		select {
		case <-p.done:
			running = false
			continue
		default:
		}
		r := run(t, root, "unlock", "x", "--break-stale")
		attempts++
		if r.code == 0 {
			t.Fatalf("contender broke a renewed lock: %s", r.stdout)
		}
		if r.code != 2 && r.code != 3 { // 3: the guard released between checks
			t.Fatalf("unlock --break-stale: exit %d: %s", r.code, r.stderr)
		}
		if rec, ok := readLock(t, root, "x"); ok && rec.RenewedAt != "" {
			renewals[rec.RenewedAt] = true
		}
	}
	if code := p.finish(t, time.Second); code != 0 {
		t.Fatalf("guard exit %d: %s", code, p.stderr.all())
	}
	assertReleased(t, root, "x")
	// 5s at one renewal per 500ms is ~10; sampling may miss some.
	if len(renewals) < 4 {
		t.Errorf("saw %d distinct renewed_at values in %d attempts, want at least 4", len(renewals), attempts)
	}
	if n := auditCount(t, root, "renew"); n < 4 {
		t.Errorf("audit log has %d renew events, want at least 4", n)
	}
	if n := auditCount(t, root, "stale-break"); n != 0 {
		t.Errorf("audit log has %d stale-break events", n)
	}
	t.Logf("%d contender attempts, %d renewals seen", attempts, len(renewals))
}
