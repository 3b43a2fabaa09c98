//go:build unix

package e2e

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/testbin"
)

// TestUnlockLiveGuard: a running guard's lock is released by nobody but its
// own process tree without --force — not by its owner label from another
// process, not by unlock --all, not by --all --owner — and a forced release
// is audited as a force-break by the actor, naming the guard as holder.
func TestUnlockLiveGuard(t *testing.T) {
	root := newRoot(t)
	g := startLokt(t, env(root, childModeEnv+"=block"), "guard", "g", "--", childCmd(t))
	readyPID(t, g)
	guardPID := g.cmd.Process.Pid
	held, ok := readLock(t, root, "g")
	if !ok || held.PID != guardPID {
		t.Fatalf("lock of the running guard: %+v, %v; want pid %d", held, ok, guardPID)
	}
	stillHeld := func(after string) {
		t.Helper()
		if rec, ok := readLock(t, root, "g"); !ok || rec.LockID != held.LockID {
			t.Fatalf("after %s the guard's lock is %+v (present %v), want it untouched", after, rec, ok)
		}
	}
	holderPID := fmt.Sprintf("pid %d", guardPID)

	r := mustRun(t, root, nil, 4, "unlock", "g")
	for _, want := range []string{`lock "g" is held by tester@`, holderPID, "still running", "lokt unlock g --force"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("unlock g: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if runtime.GOOS == "linux" && !strings.Contains(r.stderr, holderPID+" (") {
		t.Errorf("unlock g: stderr does not name the holder's command:\n%s", r.stderr)
	}
	stillHeld("unlock g")

	r = mustRun(t, root, nil, 4, "unlock", "--all")
	if !strings.Contains(r.stderr, `"g": held by tester@`) || !strings.Contains(r.stderr, holderPID) || !strings.Contains(r.stderr, "--all --force") {
		t.Errorf("unlock --all: stderr does not name the skipped lock and its holder:\n%s", r.stderr)
	}
	stillHeld("unlock --all")

	other := []string{"LOKT_OWNER=other"}
	mustRun(t, root, other, 4, "unlock", "--all", "--owner", "tester")
	stillHeld("unlock --all --owner tester")
	mustRun(t, root, other, 4, "unlock", "g") // not the owner either
	stillHeld("unlock g by another owner")
	if n := auditCount(t, root, "release"); n != 0 {
		t.Fatalf("refused unlocks left %d release events", n)
	}

	mustRun(t, root, other, 0, "unlock", "g", "--force")
	if _, ok := readLock(t, root, "g"); ok {
		t.Fatal("unlock --force left the lock")
	}
	var found bool
	for _, rec := range auditRecords(t, root) {
		if rec.Event != "force-break" || rec.Name != "g" {
			continue
		}
		found = true
		// The actor is the process that ran lokt unlock: this test.
		if rec.Owner != "other" || rec.PID != os.Getpid() || rec.Holder == nil ||
			rec.Holder.Owner != "tester" || rec.Holder.PID != guardPID || rec.Holder.LockID != held.LockID || rec.Reason != "live" {
			t.Errorf("force-break record %+v (holder %+v): want actor other pid %d, holder tester pid %d", rec, rec.Holder, os.Getpid(), guardPID)
		}
	}
	if !found {
		t.Fatal("no force-break event for g")
	}
	_ = g.stdin.Close()
	if code := g.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("guard exit %d; stderr: %s", code, g.stderr.all())
	}
}

// TestUnlockFromHolderTree: the holder's own process tree releases without
// --force: a shell that ran lokt lock, and a command run by the guard that
// holds the lock (the guard is its ancestor).
func TestUnlockFromHolderTree(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process ancestry is read on Linux only")
	}
	lokt := testbin.Path(t)
	root := newRoot(t)
	r := run(t, root, "guard", "--ttl", "1m", "x", "--", "sh", "-c", `"$0" lock y && "$0" unlock y && "$0" unlock x`, lokt)
	if r.code != 0 {
		t.Fatalf("lock/unlock from one shell, and unlock of the guard's own lock by its command: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, `released "y"`) || !strings.Contains(r.stdout, `released "x"`) {
		t.Errorf("stdout: %s", r.stdout)
	}
	for _, name := range []string{"x", "y"} {
		if _, ok := readLock(t, root, name); ok {
			t.Errorf("lock %s still held", name)
		}
	}
}
