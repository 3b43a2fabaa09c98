package atomicfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// The kernel lock is between processes, so these tests run a second copy of
// the test binary as the other contender. It talks over its stdin/stdout:
//
//	hold mode:    lock, print "locked", wait for a line, SetCounter(N), unlock, print "released"
//	acquire mode: print "trying", lock, print "got <counter>", unlock
const (
	helperEnvMode = "LOKT_ATOMICFS_HELPER"
	helperEnvPath = "LOKT_ATOMICFS_GUARD"
	helperEnvN    = "LOKT_ATOMICFS_N"
)

func TestGuardHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnvMode)
	if mode == "" {
		t.Skip("helper process for the guard tests")
	}
	path := os.Getenv(helperEnvPath)
	fail := func(err error) {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	switch mode {
	case "hold":
		g, err := LockGuard(path, 0o644)
		if err != nil {
			fail(err)
		}
		fmt.Println("locked")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fail(err)
		}
		n, _ := strconv.ParseUint(os.Getenv(helperEnvN), 10, 64)
		if err := g.SetCounter(n); err != nil {
			fail(err)
		}
		if err := g.Unlock(); err != nil {
			fail(err)
		}
		fmt.Println("released")
	case "acquire":
		fmt.Println("trying")
		g, err := LockGuard(path, 0o644)
		if err != nil {
			fail(err)
		}
		v, err := g.Counter()
		if err != nil {
			fail(err)
		}
		fmt.Printf("got %d\n", v)
		_ = g.Unlock()
	}
	os.Exit(0)
}

type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startHelper(t *testing.T, mode, path string, n uint64) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGuardHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnvMode+"="+mode, helperEnvPath+"="+path, helperEnvN+"="+strconv.FormatUint(n, 10),
		// A race-enabled helper otherwise sleeps a second before exiting.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return h
}

func (h *helper) expect(t *testing.T, prefix string) string {
	t.Helper()
	line, err := h.out.ReadString('\n')
	line = strings.TrimSpace(line)
	if err != nil || !strings.HasPrefix(line, prefix) {
		t.Fatalf("helper said %q (%v), want %q", line, err, prefix)
	}
	return line
}

// Another process holds the guard: our LockGuard must not return until it
// has released, and must then see what it wrote just before releasing.
func TestLockGuardExcludesOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".x.lck")
	h := startHelper(t, "hold", path, 41)
	h.expect(t, "locked")

	var released atomic.Bool
	type result struct {
		counter         uint64
		releasedAlready bool
		err             error
	}
	about := make(chan struct{})
	done := make(chan result, 1)
	go func() {
		close(about)
		g, err := LockGuard(path, 0o644)
		if err != nil {
			done <- result{err: err}
			return
		}
		v, err := g.Counter()
		r := result{counter: v, err: err, releasedAlready: released.Load()}
		_ = g.Unlock()
		done <- r
	}()
	<-about
	// Tell the holder to write its counter and release. Until then our
	// LockGuard above must stay blocked.
	released.Store(true)
	if _, err := io.WriteString(h.stdin, "release\n"); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "released")
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.releasedAlready {
		t.Fatal("LockGuard returned while another process held the guard")
	}
	if r.counter != 41 {
		t.Fatalf("counter after the holder released = %d, want 41 (the holder's last write)", r.counter)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("holder process: %v", err)
	}
}

// We hold the guard: the other process must block until we release, and
// then see the counter we stored just before releasing.
func TestLockGuardBlocksOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".y.lck")
	g, err := LockGuard(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetCounter(5); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, "acquire", path, 0)
	h.expect(t, "trying")
	// The helper is now about to lock (or blocked in it). If the guard did
	// not exclude it, it would read 5; it may only read what we store last.
	if err := g.SetCounter(99); err != nil {
		t.Fatal(err)
	}
	if err := g.Unlock(); err != nil {
		t.Fatal(err)
	}
	if got := h.expect(t, "got "); got != "got 99" {
		t.Fatalf("helper %s, want got 99: it took the guard while we held it", got)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
}
