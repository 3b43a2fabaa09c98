//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFreezeNeedsTTL(t *testing.T) {
	root := newRoot(t)
	r := run(t, root, "freeze", "deploy", "--reason", "no ttl")
	if r.code != 1 || !strings.Contains(r.stderr, "lokt freeze deploy --ttl") {
		t.Fatalf("freeze without --ttl: exit %d, stderr %q; want 1 with an example", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "freezes", "deploy.json")); err == nil {
		t.Fatal("a freeze was written anyway")
	}
}

func TestFreezeBlocksLockAndGuard(t *testing.T) {
	root := newRoot(t)
	if r := run(t, root, "freeze", "deploy", "--ttl", "10m", "--reason", "release 1.4"); r.code != 0 || !strings.Contains(r.stdout, "froze") {
		t.Fatalf("freeze: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{
		{"lock", "deploy"},
		{"guard", "deploy", "--", "echo", "ran"},
		{"guard", "deploy", "--wait", "--timeout", "200ms", "--", "echo", "ran"},
	} {
		r := run(t, root, args...)
		if r.code != 2 || r.stdout != "" {
			t.Fatalf("%v while frozen: exit %d, stdout %q", args, r.code, r.stdout)
		}
		for _, want := range []string{"frozen by tester@", "release 1.4", "until"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%v: message %q does not say %q", args, r.stderr, want)
			}
		}
	}
	if r := run(t, root, "status"); !strings.Contains(r.stdout, "deploy") || !strings.Contains(r.stdout, "release 1.4") {
		t.Errorf("status does not show the freeze:\n%s", r.stdout)
	}
	if r := run(t, root, "why", "deploy"); r.code != 2 || !strings.Contains(r.stdout, "frozen") {
		t.Errorf("why: exit %d:\n%s", r.code, r.stdout)
	}
	if r := run(t, root, "unfreeze", "deploy"); r.code != 0 || !strings.Contains(r.stdout, "unfroze") {
		t.Fatalf("unfreeze: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, root, "unfreeze", "deploy"); r.code != 3 {
		t.Fatalf("second unfreeze: exit %d, want 3: %s", r.code, r.stderr)
	}
	if r := run(t, root, "guard", "deploy", "--", "echo", "ran"); r.code != 0 || r.stdout != "ran\n" {
		t.Fatalf("guard after unfreeze: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

// The freeze of X and a lock named freeze-X live in different files.
func TestFreezeOwnNamespace(t *testing.T) {
	root := newRoot(t)
	if r := run(t, root, "lock", "freeze-deploy", "--pid", "0", "--ttl", "10m"); r.code != 0 {
		t.Fatalf("lock freeze-deploy: exit %d: %s", r.code, r.stderr)
	}
	if r := run(t, root, "freeze", "deploy", "--ttl", "10m"); r.code != 0 {
		t.Fatalf("freeze deploy: exit %d: %s", r.code, r.stderr)
	}
	lockFile := filepath.Join(root, "locks", "freeze-deploy.json")
	freezeFile := filepath.Join(root, "freezes", "deploy.json")
	for _, p := range []string{lockFile, freezeFile} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	if r := run(t, root, "unlock", "freeze-deploy", "--force"); r.code != 0 {
		t.Fatalf("unlock freeze-deploy: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(freezeFile); err != nil {
		t.Fatalf("unlocking freeze-deploy touched the freeze: %v", err)
	}
	if r := run(t, root, "lock", "deploy"); r.code != 2 {
		t.Fatalf("deploy no longer frozen after unlocking freeze-deploy: exit %d", r.code)
	}
	if r := run(t, root, "unfreeze", "deploy"); r.code != 0 {
		t.Fatalf("unfreeze: exit %d: %s", r.code, r.stderr)
	}
	if r := run(t, root, "lock", "freeze-deploy", "--pid", "0", "--ttl", "10m"); r.code != 0 {
		t.Fatalf("lock freeze-deploy after unfreeze: exit %d: %s", r.code, r.stderr)
	}
}

// An expired freeze blocks nothing; --wait waits a freeze out; unfreeze of
// an expired freeze is "not frozen" and prunes the file.
func TestFreezeExpiry(t *testing.T) {
	root := newRoot(t)
	if r := run(t, root, "freeze", "deploy", "--ttl", "1s"); r.code != 0 {
		t.Fatalf("freeze: exit %d: %s", r.code, r.stderr)
	}
	frozenAt := time.Now()
	r := run(t, root, "guard", "deploy", "--wait", "--timeout", "30s", "--", "echo", "ran")
	if r.code != 0 || r.stdout != "ran\n" {
		t.Fatalf("guard --wait on a freeze: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if d := time.Since(frozenAt); d < 900*time.Millisecond {
		t.Errorf("guard ran %s after a 1s freeze began", d)
	}
	if r := run(t, root, "lock", "deploy", "--pid", "0", "--ttl", "1m"); r.code != 0 {
		t.Fatalf("lock after expiry: exit %d: %s", r.code, r.stderr)
	}
	if r := run(t, root, "unfreeze", "deploy"); r.code != 3 {
		t.Fatalf("unfreeze of an expired freeze: exit %d, want 3", r.code)
	}
	if _, err := os.Stat(filepath.Join(root, "freezes", "deploy.json")); err == nil {
		t.Error("expired freeze not pruned")
	}
}

// A freeze blocks new acquisitions only.
func TestFreezeDoesNotInterruptHolder(t *testing.T) {
	root := newRoot(t)
	h := startHolder(t, root, "deploy")
	r := run(t, root, "freeze", "deploy", "--ttl", "10m")
	if r.code != 0 || !strings.Contains(r.stdout, "still holds it") {
		t.Fatalf("freeze of a held name: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	_ = h.stdin.Close()
	if code := h.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("holder exit %d after the freeze: %s", code, h.stderr.all())
	}
	assertReleased(t, root, "deploy")
	if r := run(t, root, "guard", "deploy", "--", "true"); r.code != 2 {
		t.Fatalf("guard while frozen: exit %d", r.code)
	}
}
