package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lokt-dev/lokt/internal/backend"
	"github.com/lokt-dev/lokt/internal/etcdtest"
)

// TestMain lets testscript scripts run "lokt" as a real subprocess (the test
// binary re-executed), so exit codes and output are checked end to end.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"lokt": func() { os.Exit(Main(os.Args[1:])) },
	})
}

// TestScripts runs testdata/script/*.txtar: the exit-code contract and the
// messages people see, command by command, on the file backend.
func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams("testdata/script", nil))
}

// TestScriptsEtcd runs the same scripts, and the etcd-only ones, against a
// real etcd member: each script under its own prefix. Lines that only make
// sense for files are marked [!etcd].
func TestScriptsEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	for _, dir := range []string{"testdata/script", "testdata/etcd"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			testscript.Run(t, scriptParams(dir, c))
		})
	}
}

func scriptParams(dir string, etcd *etcdtest.Cluster) testscript.Params {
	return testscript.Params{
		Dir: dir,
		Setup: func(e *testscript.Env) error {
			e.Setenv("LOKT_ROOT", e.WorkDir+"/root")
			e.Setenv("LOKT_OWNER", "tester")
			e.Setenv("LOKT_AGENT_ID", "")
			e.Setenv(backend.EnvBackend, "")
			if etcd != nil {
				e.Setenv(backend.EnvBackend, etcd.Backend("script/"+filepath.Base(e.WorkDir)))
				e.Setenv("ETCD_ENDPOINT", etcd.Endpoints()[0])
			}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "etcd" {
				return etcd != nil, nil
			}
			return false, errors.New("unknown condition " + cond)
		},
		RequireExplicitExec: true,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"exits":     cmdExits,
			"waitfile":  cmdWaitFile,
			"envq":      cmdEnvq,
			"putrecord": cmdPutRecord,
			"cmprecord": cmdCmpRecord,
		},
	}
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

// cmdPutRecord plants a record from outside lokt, on whichever backend the
// script runs: "putrecord locks NAME FILE" (outside damage, another host's
// holder, a newer protocol).
func cmdPutRecord(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: putrecord NAMESPACE NAME FILE")
	}
	data := ts.ReadFile(args[2])
	if sp := recordSpec(ts); sp != nil {
		putEtcdRecord(ts, sp, args[0]+"/"+args[1], data)
		return
	}
	dir := filepath.Join(ts.Getenv("LOKT_ROOT"), args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	ts.Check(os.WriteFile(filepath.Join(dir, args[1]+".json"), []byte(data), 0o644))
}

// cmdCmpRecord checks that a record is byte for byte FILE: "cmprecord
// locks NAME FILE".
func cmdCmpRecord(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: cmprecord NAMESPACE NAME FILE")
	}
	want := ts.ReadFile(args[2])
	var got string
	if sp := recordSpec(ts); sp != nil {
		got = getEtcdRecord(ts, sp, args[0]+"/"+args[1])
	} else {
		b, err := os.ReadFile(filepath.Join(ts.Getenv("LOKT_ROOT"), args[0], args[1]+".json"))
		ts.Check(err)
		got = string(b)
	}
	if got != want {
		ts.Fatalf("record %s/%s:\n%s\nwant:\n%s", args[0], args[1], strings.TrimSpace(got), strings.TrimSpace(want))
	}
}

func recordSpec(ts *testscript.TestScript) *backend.Spec {
	sp, err := backend.Parse(ts.Getenv(backend.EnvBackend))
	ts.Check(err)
	return sp
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
