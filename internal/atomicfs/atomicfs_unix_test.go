//go:build unix

package atomicfs

import (
	"errors"
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

func TestLockGuardFIFODoesNotHang(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".f.lck")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		g, err := LockGuard(p, 0o644)
		if err == nil {
			// Whatever the platform allows here, a counter cannot be kept in
			// a pipe: storing one must fail rather than pretend.
			if serr := g.SetCounter(5); serr == nil && g.Counter() == 5 {
				t.Error("a counter was stored in a FIFO")
			}
			_ = g.Unlock()
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("LockGuard on a FIFO hung")
	}
}
