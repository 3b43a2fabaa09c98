package cli

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript scripts run "lokt" as a real subprocess (the test
// binary re-executed), so exit codes and output are checked end to end.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"lokt": func() { os.Exit(Main(os.Args[1:])) },
	})
}

// TestScripts runs testdata/script/*.txtar: the exit-code contract and the
// messages people see, command by command.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("LOKT_ROOT", e.WorkDir+"/root")
			e.Setenv("LOKT_OWNER", "tester")
			e.Setenv("LOKT_AGENT_ID", "")
			return nil
		},
		RequireExplicitExec: true,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"exits":    cmdExits,
			"waitfile": cmdWaitFile,
			"envq":     cmdEnvq,
		},
	})
}

// cmdExits runs a program and checks its exit code: "exits 2 lokt lock x".
// Its output is kept for the stdout/stderr assertions that follow.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// cmdWaitFile waits until a file exists: "waitfile started". A background
// command creates it when it reaches the point the script waits for.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfile: %s did not appear within a minute", args[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cmdEnvq sets an environment variable to a value written with Go string
// escapes, for labels that contain control bytes: envq LOKT_OWNER '\x1b[2J'.
func cmdEnvq(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envq NAME 'GO-ESCAPED VALUE'")
	}
	v, err := strconv.Unquote(`"` + args[1] + `"`)
	if err != nil {
		ts.Fatalf("envq: %q is not a Go string body: %v", args[1], err)
	}
	ts.Setenv(args[0], v)
}
