package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lokt-dev/lokt/internal/audit"
	"github.com/lokt-dev/lokt/internal/doctor"
	"github.com/lokt-dev/lokt/internal/fsinfo"
)

func doctorTestJSON(t *testing.T, out string) doctor.Report {
	t.Helper()
	var rep doctor.Report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	return rep
}

func doctorTestCheck(t *testing.T, rep doctor.Report, name string) doctor.Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check", name)
	return doctor.Check{}
}

func TestDoctorCommand(t *testing.T) {
	t.Cleanup(fsinfo.Simulate("ext4", fsinfo.KindLocal))
	root := filepath.Join(t.TempDir(), "root")
	auditTestMust(t, root, nil, 0, "lock", "held", "--ttl", "1h")
	lockBefore, err := os.ReadFile(filepath.Join(root, "locks", "held.json"))
	if err != nil {
		t.Fatal(err)
	}
	logBefore, _ := os.ReadFile(filepath.Join(root, audit.FileName))

	r := auditTestMust(t, root, nil, 0, "doctor", "--json")
	rep := doctorTestJSON(t, r.stdout)
	if rep.ProtocolVersion != 1 || rep.Root != root || rep.RootSource != "env" || len(rep.Checks) < 10 {
		t.Fatalf("report header: %+v", rep)
	}
	for _, c := range rep.Checks {
		if c.Status != doctor.OK {
			t.Errorf("%s: %s %s", c.Name, c.Status, c.Message)
		}
	}
	r = auditTestMust(t, root, nil, 0, "doctor")
	for _, s := range []string{"lock root: " + root + " (env)", "ok    round-trip", "0 warnings, 0 failures"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("human output lacks %q:\n%s", s, r.stdout)
		}
	}
	lockAfter, _ := os.ReadFile(filepath.Join(root, "locks", "held.json"))
	logAfter, _ := os.ReadFile(filepath.Join(root, audit.FileName))
	if string(lockAfter) != string(lockBefore) || string(logAfter) != string(logBefore) {
		t.Fatal("doctor changed a lock or wrote to the audit log")
	}
}

func TestDoctorWarnsAboutReadableAuditLog(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix modes")
	}
	t.Cleanup(fsinfo.Simulate("ext4", fsinfo.KindLocal))
	root := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, audit.FileName)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	auditTestMust(t, root, nil, 0, "lock", "x", "--pid", "0", "--ttl", "1m")
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Fatalf("lokt changed the log's mode to %04o", st.Mode().Perm())
	}
	r := auditTestMust(t, root, nil, 0, "doctor", "--json") // a warning is not a failure
	c := doctorTestCheck(t, doctorTestJSON(t, r.stdout), doctor.CheckAuditLog)
	if c.Status != doctor.Warn || !strings.Contains(c.Remedy, "chmod 600 "+path) {
		t.Fatalf("audit-log check: %+v", c)
	}
	r = auditTestMust(t, root, nil, 0, "doctor")
	if !strings.Contains(r.stdout, "WARN  audit-log") || !strings.Contains(r.stdout, "fix: chmod 600") || !strings.Contains(r.stdout, "1 warning,") {
		t.Errorf("human output:\n%s", r.stdout)
	}
}

func TestDoctorFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := auditTestMust(t, file, nil, 1, "doctor", "--json")
	if c := doctorTestCheck(t, doctorTestJSON(t, r.stdout), doctor.CheckRootDir); c.Status != doctor.Fail {
		t.Fatalf("root-dir: %+v", c)
	}
	r = auditTestMust(t, file, nil, 1, "doctor")
	if !strings.Contains(r.stdout, "FAIL  root-dir") || !strings.Contains(r.stdout, "1 failure") || r.stderr != "" {
		t.Errorf("human output:\n%s\nstderr: %s", r.stdout, r.stderr)
	}
	auditTestMust(t, file, nil, 1, "doctor", "extra")
}
