package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/audit"
	"github.com/lokt-dev/lokt/internal/fsinfo"
	"github.com/lokt-dev/lokt/internal/lockfile"
)

// auditTestBuffer is an output stream that tests can wait on.
type auditTestBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newAuditTestBuffer() *auditTestBuffer {
	return &auditTestBuffer{changed: make(chan struct{}, 1)}
}

func (b *auditTestBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *auditTestBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor blocks until the output contains s (woken by writes, not by
// polling).
func (b *auditTestBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for !strings.Contains(b.String(), s) {
		select {
		case <-b.changed:
		case <-timeout:
			t.Fatalf("timed out waiting for %q in:\n%s", s, b.String())
		}
	}
}

// auditTestFactory is a Factory for a root, with the real audit observer.
// Every call gives a new process-like Factory (fresh root, fresh observer).
func auditTestFactory(t *testing.T, root string, kv ...string) (*Factory, *auditTestBuffer, *auditTestBuffer) {
	t.Helper()
	out, errOut := newAuditTestBuffer(), newAuditTestBuffer()
	cwd := t.TempDir()
	f := &Factory{
		IO: &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut},
		Getenv: func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			switch k {
			case "LOKT_ROOT":
				return root
			case "LOKT_OWNER":
				return "tester"
			}
			return ""
		},
		Getwd:     func() (string, error) { return cwd, nil },
		CallerPID: os.Getpid,
		Observer:  auditObserver,
	}
	return f, out, errOut
}

type auditTestResult struct {
	code           int
	stdout, stderr string
}

func auditTestRun(t *testing.T, root string, env []string, args ...string) auditTestResult {
	t.Helper()
	f, out, errOut := auditTestFactory(t, root, env...)
	code := Run(f, args)
	return auditTestResult{code, out.String(), errOut.String()}
}

func auditTestMust(t *testing.T, root string, env []string, wantCode int, args ...string) auditTestResult {
	t.Helper()
	r := auditTestRun(t, root, env, args...)
	if r.code != wantCode {
		t.Fatalf("lokt %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, wantCode, r.stdout, r.stderr)
	}
	return r
}

// auditTestSeedStale leaves an expired lock in root without recording it.
func auditTestSeedStale(t *testing.T, root, name string) {
	t.Helper()
	past := time.Now().Add(-2 * time.Hour)
	r, err := lokt.Open(root, lokt.WithClock(func() time.Time { return past }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Acquire(t.Context(), name, lokt.AcquireOptions{Identity: lokt.Identity{Owner: "ghost"}, Holder: lokt.Holder{}, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
}

// auditTestRecords reads the log, failing on any unreadable line.
func auditTestRecords(t *testing.T, root string) []audit.Record {
	t.Helper()
	var recs []audit.Record
	st, err := audit.Scan(root, func(_ []byte, r *audit.Record) error { recs = append(recs, *r); return nil })
	if err != nil || st.Bad != 0 {
		t.Fatalf("scan: %+v %v", st, err)
	}
	return recs
}

func TestAuditRecordsEveryEvent(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	other := []string{"LOKT_OWNER", "other", "LOKT_AGENT_ID", "agent-9"}

	auditTestMust(t, root, nil, 0, "lock", "a", "--ttl", "1h")               // acquire
	auditTestMust(t, root, nil, 0, "lock", "a", "--ttl", "2h")               // refresh
	auditTestMust(t, root, nil, 0, "lock", "b", "--pid", "0", "--ttl", "1h") // acquire
	auditTestMust(t, root, other, 2, "lock", "b")                            // deny
	auditTestSeedStale(t, root, "c")                                         //
	auditTestMust(t, root, nil, 0, "lock", "c")                              // stale-break + acquire
	auditTestSeedStale(t, root, "d")                                         //
	auditTestMust(t, root, nil, 0, "status", "--prune-expired")              // auto-prune
	auditTestMust(t, root, nil, 0, "lock", "e", "--pid", "0", "--ttl", "1h") // acquire
	auditTestMust(t, root, other, 0, "unlock", "e", "--force")               // force-break
	if err := os.WriteFile(filepath.Join(root, "locks", "f.json"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	auditTestMust(t, root, nil, 0, "lock", "f")                                          // corrupt-break + acquire
	auditTestMust(t, root, nil, 0, "freeze", "g", "--ttl", "10m", "--reason", "release") // freeze
	auditTestMust(t, root, other, 2, "lock", "g")                                        // freeze-deny
	auditTestMust(t, root, nil, 0, "unfreeze", "g")                                      // unfreeze
	auditTestMust(t, root, nil, 0, "unlock", "a")                                        // release

	// renew and lost come from guard, which calls the engine directly.
	f, _, _ := auditTestFactory(t, root)
	r, err := f.Root(true)
	if err != nil {
		t.Fatal(err)
	}
	self := lokt.Self()
	id := lokt.Identity{Owner: "tester"}
	h, err := r.Acquire(t.Context(), "h", lokt.AcquireOptions{Identity: id, Holder: self, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Renew(t.Context(), "h", h.LockID, lokt.RenewOptions{Identity: id, Holder: self, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	r.Emit(lokt.Event{Type: lokt.EventLost, Name: "h", Actor: lokt.Actor{Identity: id, Holder: self}, Lock: h, Reason: "force-broken"})

	recs := auditTestRecords(t, root)
	byEvent := map[string][]audit.Record{}
	for _, rec := range recs {
		byEvent[rec.Event] = append(byEvent[rec.Event], rec)
		if rec.TS.IsZero() || rec.Host == "" || rec.Owner == "" {
			t.Errorf("record without ts/host/owner: %+v", rec)
		}
	}
	for _, ev := range []lokt.EventType{lokt.EventAcquire, lokt.EventRefresh, lokt.EventRenew, lokt.EventRelease, lokt.EventDeny,
		lokt.EventStaleBreak, lokt.EventAutoPrune, lokt.EventForceBreak, lokt.EventCorruptBreak, lokt.EventLost,
		lokt.EventFreeze, lokt.EventUnfreeze, lokt.EventFreezeDeny} {
		if len(byEvent[string(ev)]) == 0 {
			t.Errorf("no %s event in the log", ev)
		}
	}
	first := func(ev lokt.EventType, name string) audit.Record {
		t.Helper()
		for _, rec := range byEvent[string(ev)] {
			if rec.Name == name {
				return rec
			}
		}
		t.Fatalf("no %s of %s", ev, name)
		return audit.Record{}
	}
	acq, ref, rel := first(lokt.EventAcquire, "a"), first(lokt.EventRefresh, "a"), first(lokt.EventRelease, "a")
	if acq.LockID == "" || ref.LockID != acq.LockID || rel.LockID != acq.LockID {
		t.Errorf("one acquisition, three lock_ids: %s %s %s", acq.LockID, ref.LockID, rel.LockID)
	}
	if acq.PID != os.Getpid() || acq.TTLSec == nil || *acq.TTLSec != 3600 || acq.ExpiresAt == nil || acq.Token == 0 {
		t.Errorf("acquire fields: %+v", acq)
	}
	if *ref.TTLSec != 7200 {
		t.Errorf("refresh ttl_sec %d", *ref.TTLSec)
	}
	deny := first(lokt.EventDeny, "b")
	if deny.Owner != "other" || deny.AgentID != "agent-9" || deny.Holder == nil || deny.Holder.Owner != "tester" || deny.Holder.PID != 0 || deny.LockID != deny.Holder.LockID {
		t.Errorf("deny must say who was denied and who holds it: %+v holder %+v", deny, deny.Holder)
	}
	sb := first(lokt.EventStaleBreak, "c")
	if sb.Holder == nil || sb.Holder.Owner != "ghost" || sb.Reason != "expired" {
		t.Errorf("stale-break must record the broken holder: %+v", sb)
	}
	if ap := first(lokt.EventAutoPrune, "d"); ap.Holder == nil || ap.Holder.Owner != "ghost" {
		t.Errorf("auto-prune: %+v", ap)
	}
	fb := first(lokt.EventForceBreak, "e")
	if fb.Owner != "other" || fb.Holder == nil || fb.Holder.Owner != "tester" || fb.LockID != first(lokt.EventAcquire, "e").LockID {
		t.Errorf("force-break must join the broken acquisition and name its holder: %+v", fb)
	}
	if cb := first(lokt.EventCorruptBreak, "f"); cb.Reason == "" {
		t.Errorf("corrupt-break without the damage: %+v", cb)
	}
	fr, fd, uf := first(lokt.EventFreeze, "g"), first(lokt.EventFreezeDeny, "g"), first(lokt.EventUnfreeze, "g")
	if fr.Reason != "release" || fr.ExpiresAt == nil || fd.Reason != "release" || fd.FrozenBy == nil || fd.FrozenBy.Owner != "tester" || fd.Owner != "other" || uf.ExpiresAt == nil {
		t.Errorf("freeze events: %+v / %+v / %+v", fr, fd, uf)
	}
	rn, lost := first(lokt.EventRenew, "h"), first(lokt.EventLost, "h")
	if rn.LockID != h.LockID || lost.LockID != h.LockID || lost.Reason != "force-broken" {
		t.Errorf("renew/lost: %+v / %+v", rn, lost)
	}
}

func TestAuditFailureNeverFailsALock(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(filepath.Join(root, audit.FileName), 0o700); err != nil {
		t.Fatal(err) // a directory where the log should be: every write fails
	}
	r := auditTestMust(t, root, nil, 0, "lock", "a", "--pid", "0", "--ttl", "1h")
	if !strings.Contains(r.stderr, "audit log not written") {
		t.Errorf("no warning: %q", r.stderr)
	}
	auditTestMust(t, root, nil, 0, "lock", "b", "--pid", "0", "--ttl", "1h")
	r = auditTestMust(t, root, nil, 0, "unlock", "--all") // two events, one warning
	if n := strings.Count(r.stderr, "warning"); n != 1 {
		t.Errorf("%d warnings in one process, want 1:\n%s", n, r.stderr)
	}
	auditTestMust(t, root, nil, 3, "exists", "a")
}

// auditTestSeedLog writes records at chosen times.
func auditTestSeedLog(t *testing.T, root string, recs ...audit.Record) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	l := audit.New(root, audit.Config{})
	defer l.Close()
	for i := range recs {
		if err := l.Append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditCommandFilters(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	now := time.Now()
	ttl := int64(600)
	exp := lockfile.NewTime(now.Add(10 * time.Minute))
	auditTestSeedLog(t, root,
		audit.Record{TS: lockfile.NewTime(now.Add(-48 * time.Hour)), Event: "acquire", Name: "old", LockID: "0123456789abcdef", Owner: "ann", Host: "h1", PID: 1},
		audit.Record{TS: lockfile.NewTime(now.Add(-time.Hour)), Event: "acquire", Name: "deploy", LockID: "aaaaaaaabbbb", Owner: "bob", Host: "h2", PID: 2, AgentID: "ag", TTLSec: &ttl, ExpiresAt: &exp, Token: 3},
		audit.Record{TS: lockfile.NewTime(now.Add(-time.Minute)), Event: "force-break", Name: "deploy", LockID: "aaaaaaaabbbb", Owner: "cat", Host: "h3", PID: 3, Reason: "live",
			Holder: &audit.Holder{LockID: "aaaaaaaabbbb", Owner: "bob", Host: "h2", PID: 2}},
	)
	f, err := os.OpenFile(filepath.Join(root, audit.FileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("{torn\n")
	_ = f.Close()

	r := auditTestMust(t, root, nil, 0, "audit")
	for _, s := range []string{"TIME", "EVENT", "OWNER@HOST", "old", "bob@h2 (agent ag)", "ttl 10m00s", "token 3", "lock aaaaaaaa", "broke bob@h2 pid 2's lock aaaaaaaa (live)"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("table lacks %q:\n%s", s, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "skipped 1 unreadable line") {
		t.Errorf("torn line not reported: %q", r.stderr)
	}

	lines := func(out string) []map[string]any {
		var ms []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("--json printed a non-JSON line %q", l)
			}
			ms = append(ms, m)
		}
		return ms
	}
	if got := lines(auditTestMust(t, root, nil, 0, "audit", "--json").stdout); len(got) != 3 {
		t.Errorf("--json: %d lines, want 3", len(got))
	}
	got := lines(auditTestMust(t, root, nil, 0, "audit", "--json", "--since", "2h").stdout)
	if len(got) != 2 || got[0]["name"] != "deploy" {
		t.Errorf("--since 2h: %v", got)
	}
	got = lines(auditTestMust(t, root, nil, 0, "audit", "--json", "--since", now.Add(-30*time.Minute).UTC().Format(time.RFC3339)).stdout)
	if len(got) != 1 || got[0]["event"] != "force-break" {
		t.Errorf("--since RFC 3339: %v", got)
	}
	got = lines(auditTestMust(t, root, nil, 0, "audit", "--json", "--name", "old").stdout)
	if len(got) != 1 || got[0]["owner"] != "ann" {
		t.Errorf("--name old: %v", got)
	}
	if r := auditTestMust(t, root, nil, 0, "audit", "--name", "nothing"); !strings.Contains(r.stdout, "no matching audit events") {
		t.Errorf("no match: %q", r.stdout)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--since", "-5m"}, {"--name", ".hidden"}, {"extra-arg"}} {
		auditTestMust(t, root, nil, 1, append([]string{"audit"}, bad...)...)
	}

	missing := filepath.Join(t.TempDir(), "none")
	if r := auditTestMust(t, missing, nil, 0, "audit"); !strings.Contains(r.stdout, "does not exist") {
		t.Errorf("missing root: %q", r.stdout)
	}
	if r := auditTestMust(t, missing, nil, 0, "audit", "--json"); r.stdout != "" {
		t.Errorf("missing root, --json: %q", r.stdout)
	}
	auditTestMust(t, missing, nil, 1, "audit", "--tail")
	if _, err := os.Lstat(missing); !os.IsNotExist(err) {
		t.Fatal("lokt audit created the root")
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"8h":                          now.Add(-8 * time.Hour),
		"90s":                         now.Add(-90 * time.Second),
		"2030-05-01T00:00:00Z":        time.Date(2030, 5, 1, 0, 0, 0, 0, time.UTC),
		"2030-05-01T00:00:00.5+02:00": time.Date(2030, 4, 30, 22, 0, 0, 5e8, time.UTC),
		"2030-05-01":                  time.Date(2030, 5, 1, 0, 0, 0, 0, time.Local),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestAuditTailFollowsAcrossRotation(t *testing.T) {
	if !audit.RotationSupported {
		t.Skip("audit.log is not rotated on this platform")
	}
	root := filepath.Join(t.TempDir(), "root")
	auditTestSeedLog(t, root, audit.Record{TS: lockfile.NewTime(time.Now()), Event: "acquire", Name: "before", Owner: "o", Host: "h"})
	f, out, errOut := auditTestFactory(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runAudit(ctx, f, &AuditOptions{Tail: true, JSON: true, ready: func() { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("tail ended early: %v", err)
	}
	if !strings.Contains(errOut.String(), "following") {
		t.Errorf("no following notice on stderr: %q", errOut.String())
	}
	auditTestMust(t, root, nil, 0, "lock", "one", "--pid", "0", "--ttl", "1h")
	out.waitFor(t, `"name":"one"`)
	// Rotated right after this event is written...
	auditTestMust(t, root, nil, 0, "lock", "two", "--pid", "0", "--ttl", "1h")
	rot := audit.New(root, audit.Config{MaxBytes: 1, Keep: 5})
	rec := audit.Record{TS: lockfile.NewTime(time.Now()), Event: "release", Name: "rotated", Owner: "o", Host: "h"}
	if err := rot.Append(&rec); err != nil {
		t.Fatal(err)
	}
	_ = rot.Close()
	if _, err := os.Stat(filepath.Join(root, audit.FileName+".1")); err != nil {
		t.Fatalf("no rotation happened: %v", err)
	}
	// ...and one written just after the rotation, into a new audit.log.
	auditTestMust(t, root, nil, 0, "lock", "three", "--pid", "0", "--ttl", "1h")
	out.waitFor(t, `"name":"three"`)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("interrupted tail must end cleanly, got %v", err)
	}
	s := out.String()
	for _, name := range []string{"two", "rotated"} {
		if !strings.Contains(s, `"name":"`+name+`"`) {
			t.Errorf("tail missed %s", name)
		}
	}
	if strings.Contains(s, `"before"`) || strings.Count(s, "\n") != 4 {
		t.Errorf("tail printed history or duplicates:\n%s", s)
	}
}

func TestAuditTailWithSinceReplaysAndUsesTable(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	auditTestSeedLog(t, root, audit.Record{TS: lockfile.NewTime(time.Now()), Event: "acquire", Name: "recent", Owner: "o", Host: "h"})
	f, out, _ := auditTestFactory(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAudit(ctx, f, &AuditOptions{Tail: true, Since: time.Now().Add(-time.Hour)}) }()
	out.waitFor(t, "recent")
	if !strings.Contains(out.String(), "EVENT") {
		t.Errorf("table without header:\n%s", out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRequireLocalFSRefusesToLock(t *testing.T) {
	t.Cleanup(fsinfo.Simulate("nfs", fsinfo.KindNetwork))
	root := filepath.Join(t.TempDir(), "root")
	strict := []string{fsinfo.EnvRequireLocal, "1"}

	r := auditTestMust(t, root, strict, 1, "lock", "a", "--pid", "0", "--ttl", "1h")
	if !strings.Contains(r.stderr, "nfs (network)") || !strings.Contains(r.stderr, fsinfo.EnvRequireLocal) {
		t.Errorf("refusal message: %q", r.stderr)
	}
	if _, err := os.Lstat(root); !os.IsNotExist(err) {
		t.Fatal("a refused lock created the root")
	}
	auditTestMust(t, root, strict, 1, "freeze", "a", "--ttl", "1m")
	// Without the switch it works; with it, reading and releasing still do.
	auditTestMust(t, root, nil, 0, "lock", "a", "--pid", "0", "--ttl", "1h")
	auditTestMust(t, root, strict, 0, "status")
	auditTestMust(t, root, strict, 0, "unlock", "a")
	auditTestMust(t, root, strict, 0, "audit")
	r = auditTestMust(t, root, strict, 1, "doctor")
	if !strings.Contains(r.stdout, "FAIL  filesystem") {
		t.Errorf("doctor in strict mode:\n%s", r.stdout)
	}
	auditTestMust(t, root, nil, 0, "doctor")
}

// guard's events reach the log, in order, whichever way guard ends: its
// command ran, its command could not be executed, the lock was held.
func TestGuardAuditsEveryWayOut(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	noExec := filepath.Join(t.TempDir(), "not-a-program")
	// Executable, but no format the kernel runs: found, then exec fails.
	if err := os.WriteFile(noExec, []byte("\x00\x01\x02\x03"), 0o700); err != nil {
		t.Fatal(err)
	}
	auditTestMust(t, root, nil, 0, "guard", "ran", "--", "true")
	auditTestMust(t, root, nil, 126, "guard", "noexec", "--", noExec)
	auditTestMust(t, root, nil, 0, "lock", "held", "--pid", "0", "--ttl", "1h")
	auditTestMust(t, root, []string{"LOKT_OWNER", "other"}, 2, "guard", "held", "--", "true")

	events := map[string][]string{}
	ids := map[string][]string{}
	for _, rec := range auditTestRecords(t, root) {
		events[rec.Name] = append(events[rec.Name], rec.Event)
		ids[rec.Name] = append(ids[rec.Name], rec.LockID)
	}
	for _, name := range []string{"ran", "noexec"} {
		if got := strings.Join(events[name], ","); got != "acquire,release" {
			t.Errorf("%s: events %s, want acquire,release", name, got)
		}
		if len(ids[name]) == 2 && (ids[name][0] == "" || ids[name][0] != ids[name][1]) {
			t.Errorf("%s: lock_ids %v, want one acquisition", name, ids[name])
		}
	}
	if got := strings.Join(events["held"], ","); got != "acquire,deny" {
		t.Errorf("held: events %s, want acquire,deny", got)
	}
}
