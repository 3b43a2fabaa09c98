package e2e

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/proc"
)

// Holders in another PID namespace or with another host name share the
// lock root but not the pids: lokt never judges them by pid. While their
// process tree holds the lock's evidence (a flock, which the kernel shares
// across namespaces) they are live; once it is gone, only their TTL ends
// the lock, as for a holder on another machine.

func TestNamespacePIDHolderNotBrokenFromOutside(t *testing.T) {
	t.Parallel()
	root := newRoot(t)
	rep := newPidReports(t)
	g := startTree(t, env(root, "REPORT="+rep.path), true, unshareCmd(t, []string{"--pid", "--fork", "--mount-proc"},
		loktBin(t), "guard", "g", "--", "sh", "-c", `echo ready > "$REPORT"; cat >/dev/null`)...)
	rep.await(t, "ready")
	rec, ok := readFullLock(t, root, "g")
	if !ok {
		t.Fatal("no record while the inner guard runs")
	}
	if rec.PIDNS == "" || rec.PIDNS == proc.Namespace() {
		t.Fatalf("inner holder's pid_ns %q, want another namespace than ours (%s)", rec.PIDNS, proc.Namespace())
	}
	// Its pid (1 or so) names some other process here.
	r := contend(t, root, "g")
	if r.code != 2 || !strings.Contains(r.stderr, "another PID namespace") {
		t.Fatalf("outside guard: exit %d, stderr %q; want 2 naming the other PID namespace", r.code, r.stderr)
	}
	if r := run(t, root, "unlock", "g", "--break-stale"); r.code != 2 {
		t.Fatalf("outside unlock --break-stale: exit %d: %s", r.code, r.stderr)
	}
	// The inner command ends normally: the lock is released.
	g.closeStdin()
	if code := g.finish(t); code != 0 {
		t.Fatalf("inner guard exit %d: %s", code, g.errText())
	}
	assertReleased(t, root, "g")
	assertFreeAtOnce(t, root, "g", "the inner guard released")
}

// The inner guard SIGKILLed with its whole tree (it is the namespace's
// init, so the kernel kills the rest): its evidence is gone with it, and
// outside it can only be judged by its TTL. Observed: the lock stays held
// until expires_at, then the waiting guard breaks it as expired.
func TestNamespacePIDHolderKilledEndsByTTL(t *testing.T) {
	t.Parallel()
	root := newRoot(t)
	rep := newPidReports(t)
	u := startTree(t, env(root, "REPORT="+rep.path), false, unshareCmd(t, []string{"--pid", "--fork", "--mount-proc"},
		loktBin(t), "guard", "g", "--ttl", "3s", "--", "sh", "-c", `echo ready > "$REPORT"; exec sleep 300`)...)
	rep.await(t, "ready")
	kids := children(u.pid())
	if len(kids) != 1 {
		t.Fatalf("unshare has children %v, want the inner guard alone", kids)
	}
	killed := time.Now()
	if err := syscall.Kill(kids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	u.finish(t)
	rec, ok := readFullLock(t, root, "g")
	if !ok {
		t.Fatal("the killed inner guard's lock vanished")
	}
	expires := rec.expiry(t)
	if expires.IsZero() {
		t.Fatalf("record has no expiry: %+v", rec)
	}
	r := run(t, root, "guard", "g", "--wait", "--timeout", "1m", "--", "true")
	if r.code != 0 {
		t.Fatalf("waiting guard: exit %d: %s", r.code, r.stderr)
	}
	var brk, acq *time.Time
	for _, ev := range auditRecords(t, root) {
		switch {
		case ev.Event == "stale-break" || ev.Event == "force-break":
			if ev.Reason != "expired" {
				t.Fatalf("the killed namespace's lock was broken as %q, want expired (never by pid): %+v", ev.Reason, ev)
			}
			ts := ev.TS.Time
			brk = &ts
		case ev.Event == "acquire" && ev.LockID != rec.LockID:
			ts := ev.TS.Time
			acq = &ts
		}
	}
	if brk == nil || acq == nil {
		t.Fatal("no break and new acquisition in the audit log")
	}
	if acq.Before(expires) {
		t.Fatalf("taken at %s, before the TTL ended at %s", acq, expires)
	}
	t.Logf("inner guard and tree SIGKILLed at %s; lock expired at %s (%s later); taken %s after expiry",
		killed.Format("15:04:05.000"), expires.Format("15:04:05.000"), expires.Sub(killed).Round(time.Millisecond), acq.Sub(expires).Round(time.Millisecond))
}

// The other way round: a holder outside, whose pid does not exist in the
// inner namespace, is not broken from inside it.
func TestNamespaceOutsideHolderNotBrokenFromInside(t *testing.T) {
	t.Parallel()
	root := newRoot(t)
	helper := startTree(t, env(root), false, "sleep", "300")
	if r := run(t, root, "lock", "g", "--pid", strconv.Itoa(helper.pid())); r.code != 0 {
		t.Fatalf("lock --pid: exit %d: %s", r.code, r.stderr)
	}
	in := func(args ...string) result {
		t.Helper()
		p := startTree(t, env(root), false, unshareCmd(t, []string{"--pid", "--fork", "--mount-proc"}, append([]string{loktBin(t)}, args...)...)...)
		code := p.finish(t)
		return result{code: code, stderr: p.errText()}
	}
	if r := in("guard", "g", "--", "true"); r.code != 2 || !strings.Contains(r.stderr, "another PID namespace") {
		t.Fatalf("inner guard: exit %d, stderr %q; want 2 naming the other PID namespace", r.code, r.stderr)
	}
	if r := in("unlock", "g", "--break-stale"); r.code != 2 {
		t.Fatalf("inner unlock --break-stale: exit %d: %s", r.code, r.stderr)
	}
}

// A holder with another host name (same kernel, same pids) is never broken
// by pid either: with its guard and whole tree dead it stays held (no TTL)
// until --force, as a holder on another machine would.
func TestNamespaceOtherHostNameHolder(t *testing.T) {
	t.Parallel()
	const inner = `hostname lokt-other-host && exec "$0" guard g -- sh -c "$1"`
	t.Run("killed", func(t *testing.T) {
		root := newRoot(t)
		rep := newPidReports(t)
		g := startTree(t, env(root, "REPORT="+rep.path), false, unshareCmd(t, []string{"--uts"}, "sh", "-c", inner, loktBin(t),
			`sleep 300 & echo "job $!" > "$REPORT"; echo "top $$" > "$REPORT"; wait`)...)
		pids := rep.expect(t, "job", "top")
		rec, _ := readFullLock(t, root, "g")
		if rec.Host != "lokt-other-host" || rec.PID != g.pid() {
			t.Fatalf("record host %q pid %d; want lokt-other-host and the guard's pid %d", rec.Host, rec.PID, g.pid())
		}
		if r := contend(t, root, "g"); r.code != 2 || !strings.Contains(r.stderr, "another host") {
			t.Fatalf("outside guard: exit %d, stderr %q; want 2 naming the other host", r.code, r.stderr)
		}
		if err := syscall.Kill(g.pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		g.finish(t)
		waitGone(t, "the command (parent-death signal)", pids["top"])
		assertHeld(t, root, "g", "guard killed, its job runs")
		rep.kill(t, "job")
		// Every pid of the holder is dead, and visible as dead here.
		assertHeld(t, root, "g", "the other host's holder and its tree are dead, no TTL")
		if r := run(t, root, "unlock", "g", "--break-stale"); r.code != 2 {
			t.Fatalf("unlock --break-stale: exit %d: %s", r.code, r.stderr)
		}
		if r := run(t, root, "unlock", "g", "--force"); r.code != 0 {
			t.Fatalf("unlock --force: exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("normal exit", func(t *testing.T) {
		root := newRoot(t)
		rep := newPidReports(t)
		g := startTree(t, env(root, "REPORT="+rep.path), true, unshareCmd(t, []string{"--uts"}, "sh", "-c", inner, loktBin(t),
			`echo "top $$" > "$REPORT"; cat >/dev/null`)...)
		rep.expect(t, "top")
		assertHeld(t, root, "g", "the other host's guard runs")
		g.closeStdin()
		if code := g.finish(t); code != 0 {
			t.Fatalf("inner guard exit %d: %s", code, g.errText())
		}
		assertReleased(t, root, "g")
	})
}

// After `unshare --pid --fork` without --mount-proc, /proc shows the outer
// namespace: every pid read there would be someone else's. lokt must not
// judge by it: it records no start for such a holder and never calls it
// dead by pid.
func TestNamespaceForeignProc(t *testing.T) {
	t.Parallel()
	root := newRoot(t)
	const script = `L=$0
"$L" lock n >/dev/null || exit 10
sh -c '"$0" lock n 2>/dev/null' "$L"; [ $? -eq 2 ] || exit 11
sh -c '"$0" unlock n --break-stale 2>/dev/null' "$L"; [ $? -eq 2 ] || exit 12
"$L" guard g -- true || exit 13
`
	p := startTree(t, env(root), false, unshareCmd(t, []string{"--pid", "--fork"}, "sh", "-c", script, loktBin(t))...)
	if code := p.finish(t); code != 0 {
		rec, _ := readFullLock(t, root, "n")
		t.Fatalf("inside: exit %d (10 lock, 11 a second holder was let in, 12 break-stale broke a live lock, 13 guard failed): %s\nrecord: %+v", code, p.errText(), rec)
	}
	rec, ok := readFullLock(t, root, "n")
	if !ok {
		t.Fatal("no record of the inner holder")
	}
	if rec.PIDStart != "" {
		t.Errorf("inner holder recorded with start %q, read from a /proc of another namespace", rec.PIDStart)
	}
	// The holder (the inner shell) is gone with its namespace; outside it
	// is a holder in another namespace: live until unlocked (no TTL).
	if r := contend(t, root, "n"); r.code != 2 {
		t.Fatalf("outside: exit %d: %s", r.code, r.stderr)
	}
}
