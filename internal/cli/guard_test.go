//go:build unix

package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokt-dev/lokt"
)

// guardTestBuffer is a bytes.Buffer safe for the child's output copier and
// guard's warnings writing at once.
type guardTestBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *guardTestBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *guardTestBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// guardTestFactory is a Factory over buffers with its own lock root and
// extra environment variables.
func guardTestFactory(t *testing.T, vars ...string) (*Factory, *guardTestBuffer, *guardTestBuffer) {
	t.Helper()
	envv := map[string]string{"LOKT_ROOT": filepath.Join(t.TempDir(), "root"), "LOKT_OWNER": "tester"}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		envv[k] = v
	}
	out, errOut := &guardTestBuffer{}, &guardTestBuffer{}
	f := &Factory{
		IO:        &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut},
		Getenv:    func(k string) string { return envv[k] },
		Getwd:     os.Getwd,
		CallerPID: os.Getpid,
	}
	return f, out, errOut
}

// guardTestOtherHolder holds name on behalf of a sleeping process that is
// neither this test's ancestor nor the guard under test.
func guardTestOtherHolder(t *testing.T, f *Factory, name string) *lokt.Lock {
	t.Helper()
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	h, err := lokt.ProcessHolder(sleeper.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	root, err := f.Root(true)
	if err != nil {
		t.Fatal(err)
	}
	l, err := root.Acquire(context.Background(), name, lokt.AcquireOptions{Identity: f.Identity(), Holder: h})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestGuardArgs(t *testing.T) {
	cases := []struct {
		args    []string
		wantErr string
		name    string
		command []string
		ttl     time.Duration
	}{
		{args: []string{"build", "--", "make", "-j8"}, name: "build", command: []string{"make", "-j8"}},
		{args: []string{"--ttl", "5m", "build", "--", "make"}, name: "build", command: []string{"make"}, ttl: 5 * time.Minute},
		{args: []string{"build", "--ttl", "5m", "--wait", "--", "sh", "-c", "x --ttl 1s"}, name: "build", command: []string{"sh", "-c", "x --ttl 1s"}, ttl: 5 * time.Minute},
		{args: []string{"build"}, wantErr: "needs a command to run after --"},
		{args: []string{"build", "--"}, wantErr: "needs a command to run after --"},
		{args: []string{"--", "make"}, wantErr: "needs a lock NAME"},
		{args: []string{}, wantErr: "needs a lock NAME"},
		{args: []string{"build", "make"}, wantErr: "put -- between NAME and the command"},
		{args: []string{"a", "b", "--", "make"}, wantErr: "one lock NAME"},
		{args: []string{"build", "make", "-j8"}, wantErr: "put -- before the command"},
		{args: []string{"build", "--ttl", "soon", "--", "make"}, wantErr: "not a duration"},
	}
	for _, tc := range cases {
		f, _, _ := guardTestFactory(t)
		var got *GuardOptions
		cmd := newCmdGuard(f, func(o *GuardOptions) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitCode(err) != ExitError {
				t.Errorf("%q: error %v (exit %d), want exit 1 with %q", tc.args, err, exitCode(err), tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if got.Name != tc.name || strings.Join(got.Command, " ") != strings.Join(tc.command, " ") || got.TTL != tc.ttl || got.Timeout != 10*time.Minute {
			t.Errorf("%q: parsed %+v", tc.args, got)
		}
	}
}

func TestRunGuardPropagatesExitAndReleases(t *testing.T) {
	f, out, errOut := guardTestFactory(t)
	err := runGuard(context.Background(), f, &GuardOptions{Name: "x", Command: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}})
	if exitCode(err) != 7 || err.Error() != "" {
		t.Fatalf("err %v (exit %d), want a silent exit 7", err, exitCode(err))
	}
	if out.String() != "out\n" || errOut.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q: want only the child's output", out, errOut)
	}
	root, _ := f.Root(false)
	if _, err := root.Get(context.Background(), "x"); !errors.Is(err, lokt.ErrNotFound) {
		t.Errorf("lock not released: %v", err)
	}
}

// A command that cannot be found fails before the lock (or the root) is
// touched.
func TestRunGuardCommandNotFound(t *testing.T) {
	f, _, _ := guardTestFactory(t)
	err := runGuard(context.Background(), f, &GuardOptions{Name: "x", Command: []string{"lokt-no-such-command"}})
	if exitCode(err) != 127 || !strings.Contains(err.Error(), "command not found") {
		t.Fatalf("err %v (exit %d), want 127 command not found", err, exitCode(err))
	}
	if _, err := os.Stat(f.Getenv("LOKT_ROOT")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock root created for a command that does not exist: %v", err)
	}
}

func TestRunGuardNested(t *testing.T) {
	t.Run("environment names the current lock", func(t *testing.T) {
		f, _, _ := guardTestFactory(t)
		l := guardTestOtherHolder(t, f, "x")
		f.Getenv = guardTestEnv(f.Getenv, "LOKT_LOCK", "x", "LOKT_LOCK_ID", l.LockID)
		start := time.Now()
		err := runGuard(context.Background(), f, &GuardOptions{Name: "x", Command: []string{"true"}, Wait: true, Timeout: time.Minute})
		if exitCode(err) != ExitHeld || !strings.Contains(err.Error(), "ancestor") {
			t.Fatalf("err %v (exit %d), want exit 2 naming an ancestor", err, exitCode(err))
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s to notice", d)
		}
	})
	t.Run("stale environment is not nesting", func(t *testing.T) {
		f, _, _ := guardTestFactory(t)
		guardTestOtherHolder(t, f, "x")
		f.Getenv = guardTestEnv(f.Getenv, "LOKT_LOCK", "x", "LOKT_LOCK_ID", "0123456789abcdef0123456789abcdef")
		err := runGuard(context.Background(), f, &GuardOptions{Name: "x", Command: []string{"true"}, Wait: true, Timeout: 100 * time.Millisecond, Quiet: true})
		var timeout *lokt.TimeoutError
		if !errors.As(err, &timeout) {
			t.Fatalf("err %v, want a timeout", err)
		}
	})
}

func guardTestEnv(base func(string) string, kv ...string) func(string) string {
	extra := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		extra[kv[i]] = kv[i+1]
	}
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return base(k)
	}
}

// A force-broken lock is noticed by the next renewal, reported once and
// audited; --kill-on-lost stops the child.
func TestRunGuardLostLock(t *testing.T) {
	f, _, errOut := guardTestFactory(t)
	var events []lokt.Event
	var mu sync.Mutex
	f.Observer = func(string, *IOStreams) func(lokt.Event) {
		return func(e lokt.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
	}
	root, err := f.Root(true)
	if err != nil {
		t.Fatal(err)
	}
	guardTestBreakOnceRunning(t, root, "x")
	err = runGuard(context.Background(), f, &GuardOptions{Name: "x", Command: []string{"sleep", "30"}, TTL: 200 * time.Millisecond, KillOnLost: true})
	if exitCode(err) != 143 {
		t.Fatalf("err %v (exit %d), want 143 (child stopped by SIGTERM)", err, exitCode(err))
	}
	if n := strings.Count(errOut.String(), "WARNING: lock lost"); n != 1 {
		t.Errorf("loss reported %d times:\n%s", n, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	var lost []lokt.Event
	for _, e := range events {
		if e.Type == lokt.EventLost {
			lost = append(lost, e)
		}
	}
	if len(lost) != 1 || lost[0].Reason == "" || lost[0].Lock == nil {
		t.Errorf("lost events: %+v", lost)
	}
}

// guardTestBreakOnceRunning force-breaks name once its guard has recorded
// the child as co-holder. Nothing announces that write, so it polls.
func guardTestBreakOnceRunning(t *testing.T, root *lokt.Root, name string) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			if st, err := root.Get(context.Background(), name); err == nil && st.Lock != nil && st.Lock.ChildPID != 0 {
				_, _ = root.Release(context.Background(), name, lokt.ReleaseOptions{Mode: lokt.Force})
				return
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
}

// Without --ttl nothing is renewed, but the lock is still checked.
func TestRunGuardVerifiesWithoutTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for one verification interval")
	}
	f, _, errOut := guardTestFactory(t)
	root, err := f.Root(true)
	if err != nil {
		t.Fatal(err)
	}
	guardTestBreakOnceRunning(t, root, "x")
	err = runGuard(context.Background(), f, &GuardOptions{Name: "x", Command: []string{"sleep", "30"}, KillOnLost: true})
	if exitCode(err) != 143 || !strings.Contains(errOut.String(), "WARNING: lock lost") {
		t.Fatalf("err %v (exit %d), stderr %q", err, exitCode(err), errOut)
	}
}

func TestFreezeCommands(t *testing.T) {
	f, out, _ := guardTestFactory(t)
	cmd := newCmdFreeze(f, func(*FreezeOptions) error { return nil })
	cmd.SetArgs([]string{"deploy"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.Execute(); exitCode(err) != ExitError || !strings.Contains(err.Error(), "lokt freeze deploy --ttl") {
		t.Fatalf("freeze without --ttl: %v (exit %d)", err, exitCode(err))
	}
	if err := runFreeze(context.Background(), f, &FreezeOptions{Name: "deploy", TTL: time.Hour, Reason: "release"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `froze "deploy"`) || !strings.Contains(out.String(), "release") {
		t.Errorf("freeze printed %q", out)
	}
	root, _ := f.Root(false)
	_, err := root.Acquire(context.Background(), "deploy", lokt.AcquireOptions{Identity: f.Identity(), Holder: lokt.Self()})
	var frozen *lokt.FrozenError
	if !errors.As(err, &frozen) {
		t.Fatalf("acquire while frozen: %v", err)
	}
	if err := runUnfreeze(context.Background(), f, &UnfreezeOptions{Name: "deploy", JSON: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"reason": "release"`) {
		t.Errorf("unfreeze --json printed %q", out)
	}
	if err := runUnfreeze(context.Background(), f, &UnfreezeOptions{Name: "deploy"}); exitCode(err) != ExitNotFound {
		t.Fatalf("unfreeze of a name not frozen: %v (exit %d), want 3", err, exitCode(err))
	}
}

func TestProgress(t *testing.T) {
	held := &lokt.HeldError{Lock: &lokt.Lock{Name: "x", Owner: "bob", Holder: lokt.Holder{Host: "h", PID: 42}, AcquiredAt: time.Now().Add(-time.Minute)}, Now: time.Now()}
	t.Run("log", func(t *testing.T) {
		var buf bytes.Buffer
		p := newProgress(&IOStreams{ErrOut: &buf}, "x")
		p.update(held)
		if buf.Len() != 0 {
			t.Fatalf("printed within the first second: %q", buf.String())
		}
		p.start = p.start.Add(-2 * time.Second)
		p.update(held)
		p.update(held) // within ten seconds of the last line: nothing
		p.done()
		if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "held by bob@h pid 42 for 1m") {
			t.Errorf("log progress %q", got)
		}
	})
	t.Run("terminal", func(t *testing.T) {
		var buf bytes.Buffer
		p := newProgress(&IOStreams{ErrOut: &buf, StderrTTY: true}, "x")
		p.start = p.start.Add(-2 * time.Second)
		p.update(held)
		p.update(held)
		p.done()
		if got := buf.String(); strings.Count(got, "\r\033[K") != 3 || strings.Contains(got, "\n") {
			t.Errorf("terminal progress %q: want two redraws and a clear, no newline", got)
		}
	})
}

// After a panic in lokt the child is stopped before the lock is released:
// releasing first would let a second holder run beside it.
func TestGuardAbortStopsChildThenReleases(t *testing.T) {
	f, _, _ := guardTestFactory(t)
	root, err := f.Root(true)
	if err != nil {
		t.Fatal(err)
	}
	g := &guard{f: f, root: root, opts: &GuardOptions{Name: "x"}, id: f.Identity(), self: lokt.Self(), tree: newTree()}
	if g.held, err = root.Hold(context.Background(), "x", lokt.HoldOptions{AcquireOptions: lokt.AcquireOptions{Identity: g.id, Holder: g.self}}); err != nil {
		t.Fatal(err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	if g.child, err = startChild(sleep, []string{"sleep", "30"}, os.Environ(), f.IO, nil, nil); err != nil {
		t.Fatal(err)
	}
	g.waitDone = make(chan struct{})
	go func() { g.child.wait(); close(g.waitDone) }()
	err = g.abort("boom", []byte("stack"))
	if exitCode(err) != ExitError || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("abort: %v (exit %d)", err, exitCode(err))
	}
	if code := g.child.exitCode(); code != 143 {
		t.Errorf("child ended with %d, want 143 (stopped by SIGTERM)", code)
	}
	if _, err := root.Get(context.Background(), "x"); !errors.Is(err, lokt.ErrNotFound) {
		t.Errorf("lock not released after abort: %v", err)
	}
}
