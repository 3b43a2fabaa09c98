// Package e2e runs the built lokt binary as real OS processes: mutual
// exclusion, staleness and signal handling are properties of processes, so
// they are proven here rather than with goroutines.
package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lokt-dev/lokt/internal/testbin"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// env is a clean environment for lokt processes: a private root and a fixed
// owner, nothing inherited that could change the root or the identity.
func env(root string, extra ...string) []string {
	base := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"LOKT_ROOT=" + root,
		"LOKT_OWNER=tester",
		// Race-built binaries otherwise sleep a second at exit.
		"GORACE=atexit_sleep_ms=0 halt_on_error=1",
	}
	return append(base, extra...)
}

// result is what one lokt process did.
type result struct {
	code   int
	stdout string
	stderr string
}

// run runs lokt with args against root and waits for it.
func run(t testing.TB, root string, args ...string) result {
	t.Helper()
	cmd := exec.Command(testbin.Path(t), args...)
	cmd.Env = env(root)
	return wait(t, cmd)
}

func wait(t testing.TB, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &errb
	}
	err := cmd.Run()
	return result{code: exitCode(t, err), stdout: out.String(), stderr: errb.String()}
}

// startPiped starts cmd with pipes to its stdin and from its stdout.
func startPiped(t testing.TB, cmd *exec.Cmd) (io.WriteCloser, io.ReadCloser) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdin, stdout
}

// statusOf is the exit code behind a Wait error: -1 when the process did
// not exit by itself (killed by a signal) or could not be waited for.
func statusOf(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

func exitCode(t testing.TB, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running lokt: %v", err)
	}
	return statusOf(err)
}

// newRoot returns an empty lock root path (not yet created).
func newRoot(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "root")
}
