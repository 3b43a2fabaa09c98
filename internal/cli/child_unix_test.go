//go:build unix

package cli

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Streams that are not files reach the command through pipes, and wait
// returns once its output is copied; a signal after the reap goes nowhere.
func TestStartChildCopiesStreamsAndReportsExit(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	var out, errOut bytes.Buffer
	streams := &IOStreams{In: strings.NewReader("in\n"), Out: &out, ErrOut: &errOut}
	c, err := startChild(sh, []string{"sh", "-c", "read l; echo \"out $l\"; echo err >&2; exit 3"}, os.Environ(), streams, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.wait()
	if got := c.exitCode(); got != 3 {
		t.Errorf("exit code %d, want 3", got)
	}
	if out.String() != "out in\n" || errOut.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
	c.signal(syscall.SIGKILL) // reaped: must not reach anything
}

func TestStartChildNotFound(t *testing.T) {
	_, err := startChild("/nonexistent/cmd", []string{"cmd"}, nil, &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, nil, nil)
	if exitCode(startError("cmd", err)) != 127 {
		t.Errorf("start error %v: want exit 127", err)
	}
}
