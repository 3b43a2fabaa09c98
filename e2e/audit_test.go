//go:build unix

package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/audit"
	"github.com/lokt-dev/lokt/internal/testbin"
)

// runEnv runs lokt with extra environment (later entries win).
func runEnv(t *testing.T, root string, extra []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(testbin.Path(t), args...)
	cmd.Env = env(root, extra...)
	return wait(t, cmd)
}

func mustRun(t *testing.T, root string, extra []string, want int, args ...string) result {
	t.Helper()
	r := runEnv(t, root, extra, args...)
	if r.code != want {
		t.Fatalf("lokt %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// auditWaitFor follows the audit log until a record matches, so a test
// waits on the event itself rather than on the clock.
func auditWaitFor(t *testing.T, root, event, name string) audit.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found := errors.New("found")
	var rec audit.Record
	_, err := audit.Follow(ctx, root, audit.FollowOptions{FromStart: true}, func(_ []byte, r *audit.Record) error {
		if r.Event == event && r.Name == name {
			rec = *r
			return found
		}
		return nil
	})
	if !errors.Is(err, found) {
		t.Fatalf("no %s event for %s in the audit log: %v", event, name, err)
	}
	return rec
}

func auditRecords(t *testing.T, root string) []audit.Record {
	t.Helper()
	var recs []audit.Record
	st, err := audit.Scan(root, func(_ []byte, r *audit.Record) error { recs = append(recs, *r); return nil })
	if err != nil || st.Bad != 0 {
		t.Fatalf("reading the audit log: %+v %v", st, err)
	}
	return recs
}

// TestAuditEveryEvent drives every event through real lokt processes and
// checks the record each one leaves.
func TestAuditEveryEvent(t *testing.T) {
	root := newRoot(t)
	other := []string{"LOKT_OWNER=other", "LOKT_AGENT_ID=agent-2"}

	mustRun(t, root, nil, 0, "lock", "a", "--ttl", "1h")
	mustRun(t, root, nil, 0, "lock", "a", "--ttl", "1h")
	mustRun(t, root, nil, 0, "lock", "b", "--pid", "0", "--ttl", "1h")
	mustRun(t, root, other, 2, "lock", "b")
	writeExpiredLock(t, root, "c")
	mustRun(t, root, nil, 0, "lock", "c")
	writeExpiredLock(t, root, "d")
	mustRun(t, root, nil, 0, "status", "--prune-expired")
	if err := os.WriteFile(filepath.Join(root, "locks", "f.json"), []byte("{torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, root, nil, 0, "lock", "f")
	mustRun(t, root, nil, 0, "freeze", "z", "--ttl", "10m", "--reason", "release 1.4")
	mustRun(t, root, other, 2, "lock", "z")
	mustRun(t, root, nil, 0, "unfreeze", "z")
	mustRun(t, root, nil, 0, "unlock", "a")

	// guard renews, is force-broken by someone else, and reports the loss.
	g := startLokt(t, env(root, childModeEnv+"=block"), "guard", "g", "--ttl", "1s", "--", childCmd(t))
	readyPID(t, g)
	auditWaitFor(t, root, "renew", "g")
	mustRun(t, root, other, 0, "unlock", "g", "--force")
	g.stderr.expect(t, "WARNING: lock lost", 30*time.Second)
	_ = g.stdin.Close()
	if code := g.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("guard exit %d", code)
	}

	recs := auditRecords(t, root)
	find := func(event, name string) audit.Record {
		t.Helper()
		for _, r := range recs {
			if r.Event == event && r.Name == name {
				return r
			}
		}
		t.Fatalf("no %s event for %s", event, name)
		return audit.Record{}
	}
	testPID := os.Getpid() // lock holds for its caller: this test
	acq, ref, rel := find("acquire", "a"), find("refresh", "a"), find("release", "a")
	if acq.LockID == "" || ref.LockID != acq.LockID || rel.LockID != acq.LockID {
		t.Errorf("acquire/refresh/release of one acquisition: lock_ids %q %q %q", acq.LockID, ref.LockID, rel.LockID)
	}
	if acq.Owner != "tester" || acq.PID != testPID || acq.Host == "" || acq.TTLSec == nil || *acq.TTLSec != 3600 || acq.ExpiresAt == nil || acq.Token == 0 {
		t.Errorf("acquire: %+v", acq)
	}
	deny := find("deny", "b")
	if deny.Owner != "other" || deny.AgentID != "agent-2" || deny.Holder == nil || deny.Holder.Owner != "tester" || deny.LockID != find("acquire", "b").LockID {
		t.Errorf("deny: %+v, holder %+v", deny, deny.Holder)
	}
	for _, ev := range []struct{ event, name string }{{"stale-break", "c"}, {"auto-prune", "d"}} {
		r := find(ev.event, ev.name)
		if r.Holder == nil || r.Holder.Owner != "someone" || r.Holder.Host != "elsewhere" || r.LockID != "old" || r.Reason != "expired" {
			t.Errorf("%s must record the broken holder: %+v %+v", ev.event, r, r.Holder)
		}
	}
	if cb := find("corrupt-break", "f"); cb.Reason == "" {
		t.Errorf("corrupt-break: %+v", cb)
	}
	fr, fd, uf := find("freeze", "z"), find("freeze-deny", "z"), find("unfreeze", "z")
	if fr.Reason != "release 1.4" || fr.ExpiresAt == nil || fd.Owner != "other" || fd.FrozenBy == nil || fd.FrozenBy.Owner != "tester" || uf.FrozenBy == nil {
		t.Errorf("freeze events: %+v / %+v / %+v", fr, fd, uf)
	}
	gAcq, gRenew, gBreak, gLost := find("acquire", "g"), find("renew", "g"), find("force-break", "g"), find("lost", "g")
	for _, r := range []audit.Record{gRenew, gBreak, gLost} {
		if r.LockID != gAcq.LockID {
			t.Errorf("%s of g has lock_id %q, want the guard's %q", r.Event, r.LockID, gAcq.LockID)
		}
	}
	if gBreak.Owner != "other" || gBreak.Holder == nil || gBreak.Holder.PID != gAcq.PID || gLost.PID != gAcq.PID || gLost.Reason == "" {
		t.Errorf("force-break/lost: %+v %+v / %+v", gBreak, gBreak.Holder, gLost)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Event] = true
	}
	for _, ev := range []string{"acquire", "refresh", "renew", "release", "deny", "stale-break", "auto-prune",
		"force-break", "corrupt-break", "lost", "freeze", "unfreeze", "freeze-deny"} {
		if !seen[ev] {
			t.Errorf("no %s event", ev)
		}
	}
}

func TestAuditLogMode(t *testing.T) {
	old := syscall.Umask(0) // lokt must not rely on the caller's umask
	defer syscall.Umask(old)
	root := newRoot(t)
	mustRun(t, root, nil, 0, "lock", "a", "--pid", "0", "--ttl", "1m")
	st, err := os.Stat(filepath.Join(root, "audit.log"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("audit.log: %v, mode %v; want 0600", err, st.Mode())
	}

	root = newRoot(t)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "audit.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, root, nil, 0, "lock", "a", "--pid", "0", "--ttl", "1m")
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Fatalf("an existing log's mode changed to %04o", st.Mode().Perm())
	}
	r := mustRun(t, root, nil, 0, "doctor")
	if !strings.Contains(r.stdout, "WARN  audit-log") || !strings.Contains(r.stdout, "chmod 600 "+path) {
		t.Fatalf("doctor does not warn about a 0644 log:\n%s", r.stdout)
	}
}

func TestAuditTail(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			root := newRoot(t)
			mustRun(t, root, nil, 0, "lock", "before", "--pid", "0", "--ttl", "1h")
			p := startLokt(t, env(root), "audit", "--tail", "--json")
			p.stderr.expect(t, "following", 30*time.Second)
			mustRun(t, root, nil, 0, "lock", "one", "--pid", "0", "--ttl", "1h")
			p.stdout.expect(t, `"name":"one"`, 30*time.Second)
			// This event is rotated away right after it is written; the
			// next is written just after the rotation, into a new file.
			mustRun(t, root, []string{"LOKT_AUDIT_MAX_BYTES=1"}, 0, "lock", "two", "--pid", "0", "--ttl", "1h")
			if _, err := os.Stat(filepath.Join(root, "audit.log.1")); err != nil {
				t.Fatalf("no rotation: %v", err)
			}
			mustRun(t, root, nil, 0, "lock", "three", "--pid", "0", "--ttl", "1h")
			p.stdout.expect(t, `"name":"two"`, 30*time.Second)
			p.stdout.expect(t, `"name":"three"`, 30*time.Second)
			p.signal(t, sig)
			if code := p.finish(t, 30*time.Second); code != 0 {
				t.Fatalf("audit --tail ended by %v: exit %d, want 0; stderr: %s", sig, code, p.stderr.all())
			}
			out := p.stdout.all()
			if strings.Contains(out, `"before"`) || strings.Count(out, "\n") != 2 {
				t.Fatalf("tail printed history or duplicates:\n%s", out)
			}
		})
	}
}

func TestAuditQuery(t *testing.T) {
	root := newRoot(t)
	mustRun(t, root, nil, 0, "lock", "x", "--pid", "0", "--ttl", "1h")
	mustRun(t, root, nil, 0, "lock", "y", "--pid", "0", "--ttl", "1h")
	r := mustRun(t, root, nil, 0, "audit", "--name", "y", "--since", "1h", "--json")
	if strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"name":"y"`) {
		t.Fatalf("audit --name y --json:\n%s", r.stdout)
	}
	r = mustRun(t, root, nil, 0, "audit")
	if !strings.Contains(r.stdout, "acquire") || !strings.Contains(r.stdout, "tester@") {
		t.Fatalf("audit table:\n%s", r.stdout)
	}
	mustRun(t, root, nil, 1, "audit", "--since", "last tuesday")
}
