//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/etcdtest"
	"github.com/lokt-dev/lokt/internal/testbin"
)

type waiterJSON struct {
	WaitID   string    `json:"wait_id"`
	Mode     string    `json:"mode"`
	Owner    string    `json:"owner"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Since    time.Time `json:"since"`
	Position int       `json:"position"`
}

// exclusiveWaiters runs lokt against one backend (its environment) and
// reads the waiters status --json lists for name.
type exclusiveWaiters struct {
	t    *testing.T
	envv []string
}

func (x exclusiveWaiters) lokt(args ...string) result {
	x.t.Helper()
	cmd := exec.Command(testbin.Path(x.t), args...)
	cmd.Env = x.envv
	return wait(x.t, cmd)
}

func (x exclusiveWaiters) status(name string) []waiterJSON {
	x.t.Helper()
	r := x.lokt("status", name, "--json")
	var out struct {
		Locks []struct {
			Waiters []waiterJSON `json:"waiters"`
		} `json:"locks"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || len(out.Locks) != 1 {
		x.t.Fatalf("status %s --json: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
	}
	return out.Locks[0].Waiters
}

// pids lists the waiters' pids in line order.
func pids(ws []waiterJSON) []int {
	var out []int
	for _, w := range ws {
		out = append(out, w.PID)
	}
	return out
}

func (x exclusiveWaiters) awaitPIDs(name string, want ...int) []waiterJSON {
	x.t.Helper()
	var ws []waiterJSON
	pollFor(x.t, 30*time.Second, "the waiters of "+name+" to be pids "+strings.Trim(strings.Join(strings.Fields(fmtInts(want)), ", "), "[]"), func() bool {
		ws = x.status(name)
		got := pids(ws)
		if len(got) != len(want) {
			return false
		}
		for i := range want {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	})
	return ws
}

func fmtInts(v []int) string {
	var b strings.Builder
	for _, n := range v {
		b.WriteString(strconv.Itoa(n) + " ")
	}
	return b.String()
}

// waitingFiles lists a file root's waiter descriptions of name.
func waitingFiles(t *testing.T, root, name string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(root, "locks", "."+name+".*.waiting"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Waiters behind a plain exclusive lock are listed by status --json, why
// and status in arrival order, with who they are and since when, while
// the record stays version 1; a SIGKILLed waiter drops out at once (and
// prune removes its file, never a live waiter's); a waiter that times out
// leaves; the line moves up as waiters go.
func testExclusiveWaiters(t *testing.T, envv []string, root string) {
	x := exclusiveWaiters{t: t, envv: envv}
	holder := startLokt(t, append(envv, childModeEnv+"=block"), "guard", "x", "--", childCmd(t))
	readyPID(t, holder)

	w1 := startLokt(t, envv, "guard", "x", "--wait", "--timeout", "1m", "--", "echo", "one")
	x.awaitPIDs("x", w1.cmd.Process.Pid)
	w2 := startLokt(t, envv, "lock", "x", "--pid", "0", "--ttl", "1m", "--wait", "--timeout", "1m", "--quiet")
	ws := x.awaitPIDs("x", w1.cmd.Process.Pid, w2.cmd.Process.Pid)
	host, _ := os.Hostname()
	for i, w := range ws {
		if w.Position != i+1 || w.Owner != "tester" || w.Host == "" || w.Mode != "exclusive" || w.WaitID == "" ||
			w.Since.IsZero() || time.Since(w.Since) < 0 || time.Since(w.Since) > time.Hour {
			t.Errorf("waiter %d: %+v", i+1, w)
		}
		if host != "" && !strings.HasPrefix(host, w.Host) && !strings.HasPrefix(w.Host, host) {
			t.Errorf("waiter %d host %q, this host is %q", i+1, w.Host, host)
		}
	}
	if !ws[0].Since.Before(ws[1].Since) {
		t.Errorf("line order is not arrival order: %v then %v", ws[0].Since, ws[1].Since)
	}
	if root != "" {
		// Old lokt binaries read it as before.
		b, err := os.ReadFile(filepath.Join(root, "locks", "x.json"))
		var rec struct {
			Version int `json:"version"`
		}
		if err != nil || json.Unmarshal(b, &rec) != nil || rec.Version != 1 {
			t.Errorf("lock file of an exclusive lock with waiters: %s (%v), want version 1", b, err)
		}
	}

	r := x.lokt("why", "x")
	if r.code != 2 {
		t.Errorf("why: exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
	for i, w := range ws {
		if want := "waiting #" + strconv.Itoa(i+1) + ": tester@"; !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "pid "+strconv.Itoa(w.PID)) {
			t.Errorf("why does not list waiter %d (pid %d):\n%s", i+1, w.PID, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "held by tester@") {
		t.Errorf("why no longer explains the holder:\n%s", r.stdout)
	}
	if r := x.lokt("status", "x"); !strings.Contains(r.stdout, "waiting #2 (exclusive)") {
		t.Errorf("status does not show the line:\n%s", r.stdout)
	}

	// SIGKILL: the first waiter is gone from the list as soon as it has
	// exited; the second moves up.
	_ = syscall.Kill(w1.cmd.Process.Pid, syscall.SIGKILL)
	w1.finish(t, 30*time.Second)
	if ws := x.status("x"); len(ws) != 1 || ws[0].PID != w2.cmd.Process.Pid || ws[0].Position != 1 {
		t.Errorf("after the first waiter was killed: %+v", ws)
	}
	if root != "" {
		if files := waitingFiles(t, root, "x"); len(files) != 2 {
			t.Errorf("waiting files before prune: %q, want the dead and the live one", files)
		}
		if r := x.lokt("status", "--prune-expired"); r.code != 0 {
			t.Errorf("prune: exit %d %s", r.code, r.stderr)
		}
		if files := waitingFiles(t, root, "x"); len(files) != 1 {
			t.Errorf("waiting files after prune: %q, want only the live waiter's", files)
		}
		if ws := x.status("x"); len(ws) != 1 || ws[0].PID != w2.cmd.Process.Pid {
			t.Errorf("after prune: %+v", ws)
		}
	}

	// A waiter that times out leaves the line.
	if r := x.lokt("lock", "x", "--pid", "0", "--ttl", "1m", "--wait", "--timeout", "1s"); r.code != 2 {
		t.Errorf("timed-out waiter: exit %d %s", r.code, r.stderr)
	}
	if ws := x.status("x"); len(ws) != 1 || ws[0].PID != w2.cmd.Process.Pid {
		t.Errorf("after a waiter timed out: %+v", ws)
	}
	if root != "" {
		if files := waitingFiles(t, root, "x"); len(files) != 1 {
			t.Errorf("waiting files after a timeout: %q", files)
		}
	}

	// The holder leaves; the waiter left gets the lock and leaves the line.
	_ = holder.stdin.Close()
	if code := holder.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("holder exit %d: %s", code, holder.stderr.all())
	}
	if code := w2.finish(t, time.Minute); code != 0 {
		t.Fatalf("waiter exit %d: %s", code, w2.stderr.all())
	}
	if ws := x.status("x"); len(ws) != 0 {
		t.Errorf("waiters listed after the last one acquired: %+v", ws)
	}
	if root != "" {
		if files := waitingFiles(t, root, "x"); len(files) != 0 {
			t.Errorf("waiting files left: %q", files)
		}
	}
	if r := x.lokt("unlock", "x", "--force"); r.code != 0 {
		t.Errorf("unlock: %s", r.stderr)
	}
}

func TestExclusiveWaitersListed(t *testing.T) {
	root := newRoot(t)
	testExclusiveWaiters(t, env(root), root)
}

func TestEtcdExclusiveWaitersListed(t *testing.T) {
	c := etcdtest.Start(t, 1)
	testExclusiveWaiters(t, etcdEnv(t, c, "waiters"), "")
}

// status --watch in line mode prints a line when a waiter joins the line
// of an exclusive lock, and when it leaves it.
func TestStatusWatchExclusiveWaiter(t *testing.T) {
	root := newRoot(t)
	envv := env(root)
	watch := startLokt(t, envv, "status", "e", "--watch")
	watch.stdout.expect(t, "free", 30*time.Second)
	if r := run(t, root, "lock", "e", "--pid", "0", "--ttl", "1m"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	watch.stdout.expect(t, "e: held by tester@", 30*time.Second)
	waiter := startLokt(t, envv, "lock", "e", "--pid", "0", "--ttl", "1m", "--wait", "--timeout", "1m", "--quiet")
	line := watch.stdout.expect(t, "waiting: #1 tester@", 30*time.Second)
	if !strings.Contains(line, "pid "+strconv.Itoa(waiter.cmd.Process.Pid)+" (exclusive)") {
		t.Errorf("waiter line %q", line)
	}
	if r := run(t, root, "unlock", "e", "--force"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if code := waiter.finish(t, time.Minute); code != 0 {
		t.Fatalf("waiter exit %d: %s", code, waiter.stderr.all())
	}
	watch.stdout.expectAfter(t, watch.stdout.count()-1, "e: held by tester@", 30*time.Second)
	watch.signal(t, syscall.SIGINT)
	if code := watch.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("watch exit %d after SIGINT", code)
	}
}
