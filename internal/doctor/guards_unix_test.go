//go:build unix

package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lokt-dev/lokt/internal/fsinfo"
)

func TestGuardFiles(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := newRoot(t)
	locks := filepath.Join(dir, "locks")
	writeFile(t, filepath.Join(locks, ".ok.lck"), "00000000000000000007\n")
	writeFile(t, filepath.Join(locks, ".v1.lck"), "12\n")
	writeFile(t, filepath.Join(locks, ".new.lck"), "")
	want(t, run(t, dir), CheckGuardFiles, OK, "readable fencing counter")

	writeFile(t, filepath.Join(locks, ".bad.lck"), "garbage\n")
	fifo := filepath.Join(locks, ".pipe.lck")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(locks, ".link.wait")
	if err := os.Symlink(filepath.Join(t.TempDir(), "x"), link); err != nil {
		t.Fatal(err)
	}
	c := want(t, run(t, dir), CheckGuardFiles, Fail, filepath.Join(locks, ".bad.lck"), fifo+" is a named pipe", link+" is a symlink", "printf")
	if strings.Contains(c.Message, ".ok.lck") || strings.Contains(c.Message, ".v1.lck") {
		t.Errorf("a good guard file was reported: %s", c.Message)
	}
	if b, _ := os.ReadFile(filepath.Join(locks, ".bad.lck")); string(b) != "garbage\n" {
		t.Errorf("doctor changed a guard file: %q", b)
	}
}
