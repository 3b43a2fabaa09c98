// Package testbin builds the lokt binary once per test process, so tests can
// run real OS processes against it (mutual exclusion is a property of
// processes, not goroutines).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	once sync.Once
	dir  string
	path string
	err  error
)

// Main builds the binary, runs the tests and removes the binary. Call it
// from TestMain: os.Exit(testbin.Main(m)).
func Main(m *testing.M) int {
	// Race-built binaries otherwise sleep a second at exit; tests that pass
	// os.Environ() to lokt inherit this.
	if os.Getenv("GORACE") == "" {
		_ = os.Setenv("GORACE", "atexit_sleep_ms=0 halt_on_error=1")
	}
	code := m.Run()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	return code
}

// Path returns the path of a lokt binary built from this module, building it
// on first use. Set LOKT_TEST_BINARY to test a prebuilt binary instead.
func Path(tb testing.TB) string {
	tb.Helper()
	once.Do(build)
	if err != nil {
		tb.Fatalf("building lokt: %v", err)
	}
	return path
}

func build() {
	if p := os.Getenv("LOKT_TEST_BINARY"); p != "" {
		path = p
		return
	}
	dir, err = os.MkdirTemp("", "lokt-testbin-")
	if err != nil {
		return
	}
	name := "lokt"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	path = filepath.Join(dir, name)
	args := []string{"build", "-o", path}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/lokt-dev/lokt/cmd/lokt")...)
	out, berr := cmd.CombinedOutput()
	if berr != nil {
		err = fmt.Errorf("%v\n%s", berr, out)
	}
}
