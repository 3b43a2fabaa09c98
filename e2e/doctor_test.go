//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type doctorJSON struct {
	ProtocolVersion *int   `json:"protocol_version"`
	Root            string `json:"root"`
	RootSource      string `json:"root_source"`
	Checks          []struct {
		Name, Status, Message, Remedy string
	} `json:"checks"`
}

func doctorReport(t *testing.T, r result) doctorJSON {
	t.Helper()
	var rep doctorJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
	}
	if rep.ProtocolVersion == nil || *rep.ProtocolVersion != 1 {
		t.Fatalf("protocol_version missing or not 1:\n%s", r.stdout)
	}
	return rep
}

func TestDoctorFreshAndBroken(t *testing.T) {
	root := newRoot(t)
	rep := doctorReport(t, mustRun(t, root, nil, 0, "doctor", "--json"))
	if rep.Root != root || rep.RootSource != "env" || len(rep.Checks) == 0 {
		t.Fatalf("report: %+v", rep)
	}
	if _, err := os.Lstat(root); !os.IsNotExist(err) {
		t.Fatal("doctor created the lock root")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rep = doctorReport(t, mustRun(t, file, nil, 1, "doctor", "--json"))
	failed := false
	for _, c := range rep.Checks {
		failed = failed || (c.Name == "root-dir" && c.Status == "fail")
	}
	if !failed {
		t.Fatalf("root-dir did not fail: %+v", rep.Checks)
	}
}

// doctor examines a root in use and leaves every lock, freeze and the audit
// log exactly as they were.
func TestDoctorLeavesLocksAlone(t *testing.T) {
	root := newRoot(t)
	g := startLokt(t, env(root, childModeEnv+"=block"), "guard", "held", "--", childCmd(t))
	readyPID(t, g)
	mustRun(t, root, nil, 0, "lock", "mine", "--ttl", "1h")
	mustRun(t, root, nil, 0, "freeze", "cold", "--ttl", "1h")
	writeExpiredLock(t, root, "stale")
	if err := os.WriteFile(filepath.Join(root, "locks", "junk.json"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	snapshot := func() map[string]string {
		m := map[string]string{}
		_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				data, _ := os.ReadFile(p)
				m[p] = info.ModTime().String() + " " + info.Mode().String() + " " + string(data)
			}
			return nil
		})
		return m
	}
	before := snapshot()
	rep := doctorReport(t, mustRun(t, root, nil, 0, "doctor", "--json"))
	after := snapshot()
	if len(after) != len(before) {
		t.Fatalf("doctor added or removed files: %d before, %d after", len(before), len(after))
	}
	for p, v := range before {
		if after[p] != v {
			t.Errorf("doctor changed %s", p)
		}
	}
	status := map[string]string{}
	for _, c := range rep.Checks {
		status[c.Name] = c.Status
	}
	if status["stale-locks"] != "warn" || status["corrupt-records"] != "warn" || status["round-trip"] != "ok" {
		t.Errorf("checks: %v", status)
	}
	_ = g.stdin.Close()
	if code := g.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("guard exit %d", code)
	}
}
