package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// snapshotDir returns every file of dir with its content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

func sameSnapshot(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: files %v, want %v", what, keys(got), keys(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %q, want %q untouched", what, k, got[k], v)
		}
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// The attack: while a waiter retries, ROOT/locks is replaced by a
// symlink to someone else's directory that holds a file named like the
// lock's record. The waiter must stop with a clear message and leave that
// directory exactly as it was; so must every later lokt.
func TestSwappedLocksDirIsRefused(t *testing.T) {
	root := newRoot(t)
	mustRun(t, root, nil, 0, "lock", "x", "--pid", "0", "--ttl", "1h")
	w := startLokt(t, env(root), "lock", "x", "--wait", "--timeout", "1m")
	w.stderr.expect(t, "waiting", 30*time.Second)

	project := filepath.Join(t.TempDir(), "project")
	if err := os.Mkdir(project, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"x.json":       `{"name": "someone's package"}` + "\n",
		".x.lck":       "not a counter\n",
		".x.wait":      "",
		"package.json": "{}\n",
	} {
		if err := os.WriteFile(filepath.Join(project, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshotDir(t, project)
	locks := filepath.Join(root, "locks")
	if err := os.Rename(locks, filepath.Join(root, "locks.moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(project, locks); err != nil {
		t.Fatal(err)
	}

	if code := w.finish(t, 30*time.Second); code != 1 {
		t.Fatalf("waiter exit %d after the swap, want 1\nstderr: %s", code, w.stderr.all())
	}
	if msg := w.stderr.all(); !strings.Contains(msg, locks) || !strings.Contains(msg, "symlink") {
		t.Errorf("waiter's message does not name %s as a symlink:\n%s", locks, msg)
	}
	for _, args := range [][]string{{"lock", "x"}, {"unlock", "x", "--force"}, {"status"}, {"freeze", "x", "--ttl", "1m"}, {"guard", "x", "--", "true"}} {
		r := runEnv(t, root, nil, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "symlink") {
			t.Errorf("lokt %s with a swapped locks/: exit %d, want 1 naming the symlink\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	sameSnapshot(t, "the symlink's target", snapshotDir(t, project), before)
}

// A record, guard file or line file planted as a symlink to a file outside
// the root is neither read nor written through.
func TestPlantedLinksAreRefused(t *testing.T) {
	root := newRoot(t)
	mustRun(t, root, nil, 0, "lock", "z")
	mustRun(t, root, nil, 0, "unlock", "z")
	outside := t.TempDir()
	target := filepath.Join(outside, "secret")
	if err := os.WriteFile(target, []byte("00000000000000000005\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, planted := range []string{"locks/a.json", "locks/.b.lck", "locks/.c.wait", "freezes/d.json"} {
		if err := os.Symlink(target, filepath.Join(root, planted)); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshotDir(t, outside)
	for _, c := range []struct {
		args []string
		path string
	}{
		{[]string{"lock", "a"}, "locks/a.json"},
		{[]string{"lock", "b"}, "locks/.b.lck"},
		{[]string{"freeze", "b", "--ttl", "1m"}, "locks/.b.lck"},
		{[]string{"freeze", "d", "--ttl", "1m"}, "freezes/d.json"},
	} {
		r := runEnv(t, root, nil, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, filepath.Join(root, c.path)) || !strings.Contains(r.stderr, "symlink") {
			t.Errorf("lokt %s: exit %d, want 1 naming %s as a symlink\nstderr: %s", strings.Join(c.args, " "), r.code, c.path, r.stderr)
		}
	}
	// c's line file is only used by a waiter that finds the name held; it
	// is an optimisation, so the waiter falls back to polling without it.
	mustRun(t, root, nil, 0, "lock", "c", "--pid", "0", "--ttl", "1h")
	mustRun(t, root, nil, 2, "lock", "c", "--wait", "--timeout", "1s")
	sameSnapshot(t, "the links' target", snapshotDir(t, outside), before)
}

// A FIFO as a guard file: no raw "illegal seek", no freeze through it, and
// doctor names it.
func TestFIFOGuardFileIsRefused(t *testing.T) {
	root := newRoot(t)
	mustRun(t, root, nil, 0, "lock", "z")
	mustRun(t, root, nil, 0, "unlock", "z")
	fifo := filepath.Join(root, "locks", ".x.lck")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"lock", "x"}, {"freeze", "x", "--ttl", "1m"}, {"guard", "x", "--", "true"}} {
		r := runEnv(t, root, nil, args...)
		if r.code != 1 || !strings.Contains(r.stderr, fifo) || !strings.Contains(r.stderr, "named pipe") || strings.Contains(r.stderr, "illegal seek") {
			t.Errorf("lokt %s with a FIFO guard file: exit %d, want 1 naming the pipe\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "freezes", "x.json")); err == nil {
		t.Error("freeze succeeded through a FIFO guard file")
	}
	r := runEnv(t, root, nil, "doctor")
	if !strings.Contains(r.stdout, fifo) {
		t.Errorf("doctor does not report the FIFO %s:\n%s", fifo, r.stdout)
	}
}

// A guard file whose counter is garbage stops the name with a message
// naming the file and the fix; nothing changes; doctor reports it.
func TestGarbageCounterIsRefused(t *testing.T) {
	root := newRoot(t)
	mustRun(t, root, nil, 0, "lock", "x")
	mustRun(t, root, nil, 0, "unlock", "x")
	guard := filepath.Join(root, "locks", ".x.lck")
	if err := os.WriteFile(guard, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, root, nil, 1, "lock", "x")
	if !strings.Contains(r.stderr, guard) || !strings.Contains(r.stderr, "counter") || !strings.Contains(r.stderr, "printf") {
		t.Errorf("message does not name the guard file and the fix:\n%s", r.stderr)
	}
	if b, _ := os.ReadFile(guard); string(b) != "garbage\n" {
		t.Errorf("guard file changed to %q", b)
	}
	if _, err := os.Lstat(filepath.Join(root, "locks", "x.json")); err == nil {
		t.Error("a lock was taken with an unreadable counter")
	}
	d := runEnv(t, root, nil, "doctor")
	if !strings.Contains(d.stdout, guard) {
		t.Errorf("doctor does not report the bad counter in %s:\n%s", guard, d.stdout)
	}
}

// Tokens strictly increase across acquisitions, and a reboot (another boot
// id in the unsynced line) continues above the durable mark.
func TestTokensIncreaseAcrossReboot(t *testing.T) {
	root := newRoot(t)
	last := uint64(0)
	take := func() uint64 {
		t.Helper()
		mustRun(t, root, nil, 0, "lock", "x", "--pid", "0", "--ttl", "1h")
		tok := lockToken(t, root, "x")
		mustRun(t, root, nil, 0, "unlock", "x")
		if tok <= last {
			t.Fatalf("token %d after %d", tok, last)
		}
		last = tok
		return tok
	}
	for range 20 {
		take()
	}
	guard := filepath.Join(root, "locks", ".x.lck")
	b, err := os.ReadFile(guard)
	if err != nil {
		t.Fatal(err)
	}
	mark := string(b[:21])
	other := strings.Replace(string(b), bootID(t), "00000000-0000-4000-8000-000000000000", 1)
	if other == string(b) {
		t.Fatalf("guard file %q does not carry this boot's id", b)
	}
	if err := os.WriteFile(guard, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if tok := take(); tok != parseUint(t, strings.TrimSpace(mark))+1 {
		t.Errorf("first token after a reboot = %d, want one above the durable mark %s", tok, mark)
	}
	for range 5 {
		take()
	}
}

func bootID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skipf("no boot id: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func parseUint(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// lockToken reads a held lock's fencing token from status --json.
func lockToken(t *testing.T, root, name string) uint64 {
	t.Helper()
	r := mustRun(t, root, nil, 0, "status", "--json")
	var st struct {
		Locks []struct {
			Name  string `json:"name"`
			Token uint64 `json:"token"`
		} `json:"locks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Locks {
		if l.Name == name {
			return l.Token
		}
	}
	t.Fatalf("%s not held: %s", name, r.stdout)
	return 0
}
