package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A full filesystem: lock fails with exit 1 and says so, leaves no
// temporary file, and a lock taken before the disk filled is untouched.
// Needs root to mount a tiny tmpfs (CI runs as root); skipped otherwise.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	root := filepath.Join(mnt, "root")
	if r := run(t, root, "lock", "before", "--pid", "0", "--ttl", "1h"); r.code != 0 {
		t.Fatalf("lock before filling: %d %s", r.code, r.stderr)
	}
	before, err := os.ReadFile(filepath.Join(root, "locks", "before.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Fill the filesystem to the last block.
	f, err := os.Create(filepath.Join(mnt, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	_ = f.Close()

	for _, name := range []string{"new", "before"} {
		r := run(t, root, "lock", name, "--pid", "0", "--ttl", "1h")
		want := 1
		if name == "before" {
			want = 2 // held: nothing needs writing to say so
		}
		if r.code != want {
			t.Fatalf("lock %s on a full disk: exit %d, want %d: %s", name, r.code, want, r.stderr)
		}
		if want == 1 && !strings.Contains(r.stderr, "no space left") {
			t.Errorf("lock %s on a full disk does not say why: %q", name, r.stderr)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "locks"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") || e.Name() == "new.json" {
			t.Errorf("left behind on a full disk: %s", e.Name())
		}
	}
	after, err := os.ReadFile(filepath.Join(root, "locks", "before.json"))
	if err != nil || string(after) != string(before) {
		t.Errorf("existing lock changed on a full disk: %v\n%s", err, after)
	}
}
