package audit

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// TestMain doubles as the writer process of the multi-process tests: the
// test binary re-executed with LOKT_AUDIT_TEST_WRITER set appends records
// and exits, so concurrency is tested between real processes, each with its
// own descriptor, as lokt commands run.
func TestMain(m *testing.M) {
	if id := os.Getenv("LOKT_AUDIT_TEST_WRITER"); id != "" {
		os.Exit(writerProcess(id))
	}
	os.Exit(m.Run())
}

func writerProcess(id string) int {
	dir := os.Getenv("LOKT_AUDIT_TEST_DIR")
	n, _ := strconv.Atoi(os.Getenv("LOKT_AUDIT_TEST_COUNT"))
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l := New(dir, cfg)
	for i := range n {
		if err := l.Append(testRec("p"+id, i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func runWriters(t *testing.T, dir string, procs, each int, extraEnv ...string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for p := range procs {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(),
			"LOKT_AUDIT_TEST_WRITER="+strconv.Itoa(p),
			"LOKT_AUDIT_TEST_DIR="+dir,
			"LOKT_AUDIT_TEST_COUNT="+strconv.Itoa(each))
		cmd.Env = append(cmd.Env, extraEnv...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("writer %d: %v\n%s", p, err, out)
			}
		}()
	}
	wg.Wait()
}

func TestConcurrentProcesses(t *testing.T) {
	const procs, each = 16, 200
	dir := t.TempDir()
	runWriters(t, dir, procs, each, EnvMaxBytes+"=0")
	files, _ := Files(dir)
	if len(files) != 1 {
		t.Fatalf("rotation was disabled, but the log is %v", files)
	}
	checkComplete(t, tokens(t, dir), procs, each, "p")
}

func TestConcurrentProcessesRotating(t *testing.T) {
	needRotation(t)
	const procs, each = 16, 200
	dir := t.TempDir()
	// ~230-byte records, rotation every ~4 KiB: about 180 rotations racing
	// with 16 writers. Keep everything so the count can be exact.
	runWriters(t, dir, procs, each, EnvMaxBytes+"=4096", EnvKeep+"=100000")
	files, _ := Files(dir)
	t.Logf("%d files", len(files))
	if len(files) < 20 {
		t.Fatalf("only %d files: rotation did not happen as often as forced", len(files))
	}
	checkComplete(t, tokens(t, dir), procs, each, "p")
}
