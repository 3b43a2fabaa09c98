package doctor

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/audit"
	"github.com/lokt-dev/lokt/internal/fsinfo"
	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/internal/proc"
)

// newRoot creates a lock root the way lokt does, with an audit log.
func newRoot(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	root, err := lokt.Open(dir, lokt.WithObserver(audit.Observer(dir, func(string) string { return "" }, os.Stderr)))
	if err != nil {
		t.Fatal(err)
	}
	id := lokt.Identity{Owner: "tester"}
	if _, err := root.Acquire(t.Context(), "live", lokt.AcquireOptions{Identity: id, Holder: lokt.Self(), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	return dir
}

type opt func(*Options)

func withEnv(kv ...string) opt {
	return func(o *Options) {
		o.Getenv = func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
}

func withNow(now time.Time) opt { return func(o *Options) { o.Now = func() time.Time { return now } } }

// run runs doctor on dir as chosen by $LOKT_ROOT, on a simulated local
// filesystem unless the test simulates another.
func run(t *testing.T, dir string, opts ...opt) *Report {
	t.Helper()
	o := Options{Locate: func() (lokt.Location, error) {
		return lokt.Location{Dir: dir, Source: "env", Reason: "$LOKT_ROOT is set"}, nil
	}}
	for _, f := range opts {
		f(&o)
	}
	return Run(o)
}

// unixOnly skips tests that need symlinks and mode bits as unix has them.
func unixOnly(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs unix symlinks and permissions")
	}
}

func simulate(t *testing.T, typ string, kind fsinfo.Kind) {
	t.Helper()
	t.Cleanup(fsinfo.Simulate(typ, kind))
}

func get(t *testing.T, rep *Report, name string) Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, rep.Checks)
	return Check{}
}

func want(t *testing.T, rep *Report, name string, status Status, contains ...string) Check {
	t.Helper()
	c := get(t, rep, name)
	if c.Status != status {
		t.Errorf("%s: status %s (%s), want %s", name, c.Status, c.Message, status)
	}
	for _, s := range contains {
		if !strings.Contains(c.Message+" | "+c.Remedy, s) {
			t.Errorf("%s: %q / %q does not mention %q", name, c.Message, c.Remedy, s)
		}
	}
	if c.Status != OK && c.Remedy == "" && name != CheckFilesystem {
		t.Errorf("%s: %s without a remedy", name, c.Status)
	}
	return c
}

var allChecks = []string{CheckRoot, CheckRootDir, CheckLocksDir, CheckFreezesDir, CheckRootPerms, CheckFilesystem,
	CheckRoundTrip, CheckClock, CheckAuditLog, CheckUnsupported, CheckCorrupt, CheckStale, CheckGuardFiles, CheckTempFiles, CheckPlatform}

func TestHealthyRoot(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := newRoot(t)
	rep := run(t, dir)
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
		if c.Status != OK {
			t.Errorf("%s: %s: %s (%s)", c.Name, c.Status, c.Message, c.Remedy)
		}
	}
	if strings.Join(names, ",") != strings.Join(allChecks, ",") {
		t.Errorf("checks %v, want %v", names, allChecks)
	}
	if rep.Failed() || rep.ProtocolVersion != 1 || rep.Root != dir || rep.RootSource != "env" {
		t.Errorf("report header %+v", rep)
	}
	want(t, rep, CheckRoundTrip, OK, "fsync", "rename", "flock")
	want(t, rep, CheckFilesystem, OK, "ext4 (local)")
	want(t, rep, CheckAuditLog, OK, "1 file(s)", "rotates at 10.0 MiB, keeps 5")
	if proc.StartSupported {
		want(t, rep, CheckPlatform, OK, "start time")
	}
}

func TestJSONSchema(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	rep := run(t, newRoot(t))
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if keys(m) != "checks,protocol_version,root,root_reason,root_source" {
		t.Fatalf("top-level keys %s", keys(m))
	}
	if m["protocol_version"] != 1.0 {
		t.Fatalf("protocol_version = %v", m["protocol_version"])
	}
	for _, c := range m["checks"].([]any) {
		cm := c.(map[string]any)
		if keys(cm) != "message,name,remedy,status" {
			t.Fatalf("check keys %s", keys(cm))
		}
		if s := cm["status"]; s != "ok" && s != "warn" && s != "fail" {
			t.Fatalf("status %v", s)
		}
	}
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func TestMissingRootIsNotCreated(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := filepath.Join(t.TempDir(), "later", "root")
	rep := run(t, dir)
	if rep.Failed() {
		t.Fatalf("a root that does not exist yet is no failure: %+v", rep.Checks)
	}
	want(t, rep, CheckRootDir, OK, "does not exist yet", "writable")
	want(t, rep, CheckLocksDir, OK, "created with the lock root")
	want(t, rep, CheckRoundTrip, OK, "not run")
	want(t, rep, CheckStale, OK, "not run")
	want(t, rep, CheckAuditLog, OK, "no audit log yet")
	if _, err := os.Lstat(filepath.Dir(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("doctor created something: %v", err)
	}
}

func TestMissingNamespaceDirs(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := t.TempDir()
	rep := run(t, dir)
	want(t, rep, CheckLocksDir, OK, "does not exist yet")
	want(t, rep, CheckRoundTrip, OK, "not run")
	if exists(filepath.Join(dir, "locks")) {
		t.Fatal("doctor created locks/")
	}
}

func TestLocationProblems(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	rep := Run(Options{Locate: func() (lokt.Location, error) { return lokt.Location{}, errors.New("no cwd") }})
	want(t, rep, CheckRoot, Fail, "no cwd", "LOKT_ROOT")
	get(t, rep, CheckPlatform)
	if !rep.Failed() || len(rep.Checks) != 2 {
		t.Fatalf("report %+v", rep)
	}
	dir := filepath.Join(t.TempDir(), "state", "lokt")
	rep = Run(Options{Locate: func() (lokt.Location, error) {
		return lokt.Location{Dir: dir, Source: "user", Reason: "nothing found"}, nil
	}})
	want(t, rep, CheckRoot, OK, "other users do not", "shared-roots")
}

func TestBadDirectories(t *testing.T) {
	unixOnly(t)
	simulate(t, "ext4", fsinfo.KindLocal)
	real := newRoot(t)

	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	rep := run(t, link)
	want(t, rep, CheckRootDir, Fail, "symlink", real)
	want(t, rep, CheckLocksDir, OK, "not checked")
	want(t, rep, CheckRoundTrip, OK, "not checked")
	want(t, rep, CheckAuditLog, OK, "not checked")
	if rep.Count(Fail) != 1 {
		t.Errorf("one cause, %d failures", rep.Count(Fail))
	}
	if !rep.Failed() {
		t.Fatal("symlinked root must fail")
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, run(t, file), CheckRootDir, Fail, "regular file, not a directory")
	// Below a file, a root cannot even be examined or created.
	want(t, run(t, filepath.Join(file, "root")), CheckRootDir, Fail)

	locks := filepath.Join(real, "locks")
	if err := os.Rename(locks, locks+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(locks+".real", locks); err != nil {
		t.Fatal(err)
	}
	want(t, run(t, real), CheckLocksDir, Fail, "symlink")
}

func TestUnwritable(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	// Tests often run as root, for whom everything is writable: the
	// permission check is simulated.
	denied := func(o *Options) { o.Writable = func(string) error { return fs.ErrPermission } }
	dir := newRoot(t)
	rep := run(t, dir, denied)
	want(t, rep, CheckRootDir, Fail, "not writable")
	want(t, rep, CheckRoundTrip, OK, "not checked")
	rep = run(t, filepath.Join(t.TempDir(), "new"), denied)
	want(t, rep, CheckRootDir, Fail, "cannot be created")
}

func TestWorldWritableRoot(t *testing.T) {
	if !modeBitsMeaningful {
		t.Skip("no mode bits")
	}
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := newRoot(t)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	want(t, run(t, dir), CheckRootPerms, Warn, "world-writable", "chmod +t")
	if err := os.Chmod(dir, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	want(t, run(t, dir), CheckRootPerms, OK)
}

func TestFilesystemKinds(t *testing.T) {
	dir := newRoot(t)
	strict := withEnv(fsinfo.EnvRequireLocal, "1")

	simulate(t, "nfs", fsinfo.KindNetwork)
	rep := run(t, dir)
	want(t, rep, CheckFilesystem, Warn, "nfs (network)", "flock", fsinfo.EnvRequireLocal)
	if rep.Failed() {
		t.Fatal("a network filesystem is a warning unless strict")
	}
	rep = run(t, dir, strict)
	want(t, rep, CheckFilesystem, Fail, "refuse")
	if !rep.Failed() {
		t.Fatal("strict mode must fail on nfs")
	}

	simulate(t, "fuse", fsinfo.KindFUSE)
	want(t, run(t, dir), CheckFilesystem, Warn, "FUSE")

	simulate(t, "0x1234", fsinfo.KindUnknown)
	want(t, run(t, dir, strict), CheckFilesystem, OK, "unknown type")

	t.Cleanup(fsinfo.SetDetectorForTesting(func(string) (fsinfo.Info, error) { return fsinfo.Info{}, errors.New("statfs failed") }))
	want(t, run(t, dir), CheckFilesystem, Warn, "statfs failed")
	want(t, run(t, dir, strict), CheckFilesystem, Fail, "statfs failed", fsinfo.EnvRequireLocal)
}

func TestClock(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := newRoot(t)
	now := time.Now()
	want(t, run(t, dir, withNow(now.Add(time.Hour))), CheckClock, Warn, "behind this host's clock", "NTP")
	want(t, run(t, dir, withNow(now.Add(-time.Hour))), CheckClock, Warn, "ahead of this host's clock")
	want(t, run(t, dir, withNow(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))), CheckClock, Warn, "cannot be right")
	want(t, run(t, filepath.Join(t.TempDir(), "none")), CheckClock, OK, "not compared")

	// A record written by a host whose clock runs ahead.
	future := now.Add(3 * time.Hour)
	writeLock(t, dir, lockfile.Lock{Name: "ahead", Host: "fast-host", PID: 0, AcquiredAt: lockfile.NewTime(future), ExpiresAt: lockfile.TimePtr(future.Add(time.Hour)), TTLSec: 3600})
	want(t, run(t, dir), CheckClock, Warn, `lock "ahead"`, "fast-host", "future")
}

func writeLock(t *testing.T, dir string, l lockfile.Lock) {
	t.Helper()
	l.Version = lockfile.Version
	if l.LockID == "" {
		l.LockID = "id-" + l.Name
	}
	if l.Owner == "" {
		l.Owner = "someone"
	}
	data, err := lockfile.Encode(&l)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "locks", l.Name+".json"), string(data))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditLogChecks(t *testing.T) {
	unixOnly(t)
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := newRoot(t)
	path := filepath.Join(dir, audit.FileName)

	if modeBitsMeaningful {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		c := want(t, run(t, dir), CheckAuditLog, Warn, "readable or writable by other users", "0644", "chmod 600 "+path)
		if strings.Contains(c.Remedy, "(") {
			t.Errorf("remedy must be a runnable command: %q", c.Remedy)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want(t, run(t, dir, withEnv(audit.EnvMaxBytes, "lots")), CheckAuditLog, Warn, audit.EnvMaxBytes)
	want(t, run(t, dir, withEnv(audit.EnvMaxBytes, "0")), CheckAuditLog, OK, "rotation disabled")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	want(t, run(t, dir), CheckAuditLog, OK, "no audit log yet")
	want(t, run(t, dir, withEnv(audit.EnvKeep, "-1")), CheckAuditLog, Warn, audit.EnvKeep)

	if err := os.Symlink(filepath.Join(dir, "elsewhere"), path); err != nil {
		t.Fatal(err)
	}
	want(t, run(t, dir), CheckAuditLog, Fail, "symlink", "rm "+path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	want(t, run(t, dir), CheckAuditLog, Fail, "directory, not a regular file")
}

func TestRecordProblems(t *testing.T) {
	unixOnly(t)
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := newRoot(t)
	now := time.Now()
	past := now.Add(-3 * time.Hour)
	host := proc.Hostname()
	// Expired by TTL; dead by a start time that is not the process's.
	writeLock(t, dir, lockfile.Lock{Name: "expired", Host: "other-host", PID: 123, AcquiredAt: lockfile.NewTime(past), ExpiresAt: lockfile.TimePtr(past.Add(time.Hour)), TTLSec: 3600})
	if proc.StartSupported {
		writeLock(t, dir, lockfile.Lock{Name: "dead", Host: host, PID: os.Getpid(), PIDStart: "not-this-process", AcquiredAt: lockfile.NewTime(past)})
	}
	writeFile(t, filepath.Join(dir, "locks", "broken.json"), "not json")
	writeFile(t, filepath.Join(dir, "locks", "future.json"), `{"version": 4, "name": "future", "shape": "new"}`)
	writeFile(t, filepath.Join(dir, "freezes", "badfreeze.json"), "{")
	writeFile(t, filepath.Join(dir, "freezes", "newfreeze.json"), `{"version": 3}`)
	old, _ := lockfile.Encode(&lockfile.Freeze{Version: 1, Name: "oldfreeze", Owner: "o", Host: "h", FrozenAt: lockfile.NewTime(past), ExpiresAt: lockfile.NewTime(past.Add(time.Minute)), TTLSec: 60})
	writeFile(t, filepath.Join(dir, "freezes", "oldfreeze.json"), string(old))
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "locks", "sneaky.json")); err != nil {
		t.Fatal(err)
	}
	rep := run(t, dir)
	want(t, rep, CheckUnsupported, Warn, "2 record(s)", "version 4", "version 3", "upgrade")
	want(t, rep, CheckCorrupt, Warn, "lock broken", "freeze badfreeze", "sneaky", "lokt unlock broken --break-stale", "lokt unfreeze badfreeze", "by hand")
	stale := want(t, rep, CheckStale, Warn, "expired (held by someone@other-host pid 123, expired", "freeze oldfreeze", "lokt status --prune-expired", "lokt unlock expired --break-stale")
	if proc.StartSupported && !strings.Contains(stale.Message, "dead (held by") {
		t.Errorf("dead holder not reported: %s", stale.Message)
	}
	if strings.Contains(stale.Message, "live") {
		t.Errorf("a live lock reported as stale: %s", stale.Message)
	}
	if rep.Failed() {
		t.Fatal("leftovers are warnings, not failures")
	}
}

func TestTempFiles(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := newRoot(t)
	fresh := filepath.Join(dir, "locks", ".tmp-x.json-abc")
	stale := filepath.Join(dir, "locks", ".tmp-y.json-def")
	probe := filepath.Join(dir, ".doctor-0123.clock")
	for _, p := range []string{fresh, stale, probe} {
		writeFile(t, p, "")
	}
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{stale, probe} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	c := want(t, run(t, dir), CheckTempFiles, Warn, "2 temporary file(s)", stale, probe, "rm ")
	if strings.Contains(c.Message, fresh) {
		t.Errorf("a write in progress was reported: %s", c.Message)
	}
}

func TestList(t *testing.T) {
	if got := list([]string{"a", "b", "c", "d"}, 2); got != "a; b; and 2 more" {
		t.Fatalf("list = %q", got)
	}
	for n, w := range map[int64]string{5: "5 bytes", 2048: "2.0 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := size(n); got != w {
			t.Errorf("size(%d) = %q", n, got)
		}
	}
}
