//go:build unix

package atomicfs

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO planted where a record should be must be refused at once: opening
// it for reading without O_NONBLOCK would wait forever for a writer.
func TestReadFileRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.json")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ReadFile(p)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("ReadFile(fifo) = %v, want ErrNotRegular naming a pipe", err)
		}
	case <-time.After(10 * time.Second):
		// Unblock the reader so the test binary can exit.
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			_ = f.Close()
		}
		t.Fatal("ReadFile(fifo) hung")
	}
}

func TestReadFileRefusesSocket(t *testing.T) {
	// Unix socket paths are short; t.TempDir() can be too long on macOS.
	dir, err := os.MkdirTemp("", "afs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := filepath.Join(dir, "s.json")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Skipf("cannot create a unix socket: %v", err)
	}
	defer func() { _ = l.Close() }()
	if _, err := ReadFile(p); err == nil {
		t.Fatal("ReadFile(socket) succeeded")
	}
}

// A FIFO, socket or device where a guard file should be is refused before
// any I/O on it: a counter cannot be kept in one, and opening a FIFO for
// reading could hang.
func TestLockGuardRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".f.lck")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		g, err := LockGuard(p, 0o644)
		if err == nil {
			_ = g.Unlock()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "named pipe") || !strings.Contains(err.Error(), p) {
			t.Fatalf("LockGuard(fifo) = %v, want ErrNotRegular naming the pipe", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LockGuard on a FIFO hung")
	}
}

// Every operation of a Dir stays in the directory it opened, even when
// its path is swapped for a symlink to another directory.
func TestDirSurvivesSwap(t *testing.T) {
	parent := t.TempDir()
	real := filepath.Join(parent, "locks")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := OpenDir(parent, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = root.Close() }()
	d, err := root.Sub("locks", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	decoy := t.TempDir()
	if err := os.WriteFile(filepath.Join(decoy, "x.json"), []byte("decoy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(real, filepath.Join(parent, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(decoy, real); err != nil {
		t.Fatal(err)
	}
	if err := root.SameAs("locks", d); !errors.Is(err, ErrSwapped) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("SameAs after a swap = %v, want ErrSwapped naming a symlink", err)
	}
	if _, err := d.ReadFile("x.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile through the pinned directory = %v, want not found (the decoy must not be read)", err)
	}
	if err := d.WriteFile("x.json", []byte("mine"), 0o644, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(decoy, "x.json")); string(got) != "decoy" {
		t.Errorf("decoy changed to %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(parent, "moved", "x.json")); string(got) != "mine" {
		t.Errorf("write went elsewhere: the real directory holds %q", got)
	}
	if _, err := root.Sub("locks", false, 0); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("Sub(symlink) = %v, want a refusal naming the symlink", err)
	}
}
