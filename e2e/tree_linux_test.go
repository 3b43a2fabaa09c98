package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lokt-dev/lokt/internal/proc"
)

// guard holds its lock for its command's whole process tree: a SIGKILLed
// guard leaves the lock to whatever its command started, and the lock is
// free at once when the last of those processes is gone. Each process of
// interest reports "NAME PID" to $REPORT when it runs; the test ends them
// by pid, in order, checking that the lock stays held until the last.

// treeCase is one shape of command tree.
type treeCase struct {
	name string
	// needs is an executable the case cannot run without.
	needs string
	cmd   []string
	// kill lists the reported processes the test kills, in order.
	kill []string
	// exitsAfter: a reported process that exits by itself once the one it
	// is keyed by is killed (the reader of a pipeline).
	exitsAfter map[string]string
	// noHoldFD lists processes that must not have inherited the lock's
	// descriptor: only their process group keeps the lock.
	noHoldFD []string
}

// Scripts report with: echo "NAME $$" > "$REPORT".
func treeCases(t *testing.T) []treeCase {
	makefile := filepath.Join(t.TempDir(), "Makefile")
	// $$$$ is the recipe shell's pid, which exec hands on to sleep.
	mk := "all: one two\none two:\n\t@echo \"$@ $$$$\" > \"$$REPORT\"; exec sleep 300\n"
	if err := os.WriteFile(makefile, []byte(mk), 0o600); err != nil {
		t.Fatal(err)
	}
	const pyWorker = `import os, subprocess, sys
# subprocess closes every inherited descriptor but 0-2 by default, so the
# worker does not share the lock's descriptor: only its process group is left.
w = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
with open(os.environ["REPORT"], "w") as f:
    f.write("worker %d\n" % w.pid)
w.wait()
`
	return []treeCase{
		{
			name: "grandchild",
			cmd:  []string{"sh", "-c", `sleep 300 & echo "sleep $!" > "$REPORT"; wait`},
			kill: []string{"sleep"},
		},
		{
			name:  "bash pipeline",
			needs: "bash",
			cmd: []string{"bash", "-c", `{ echo "writer $BASHPID" > "$REPORT"; exec sleep 300; } |
				{ echo "reader $BASHPID" > "$REPORT"; exec cat; }`},
			kill:       []string{"writer"},
			exitsAfter: map[string]string{"writer": "reader"},
		},
		{
			name: "background job",
			cmd:  []string{"sh", "-c", `sleep 300 & echo "job $!" > "$REPORT"; exec sleep 301`},
			kill: []string{"job"},
		},
		{
			name: "two background jobs",
			cmd:  []string{"sh", "-c", `sleep 300 & echo "first $!" > "$REPORT"; sleep 300 & echo "second $!" > "$REPORT"; exec sleep 301`},
			kill: []string{"second", "first"},
		},
		{
			name: "double fork",
			cmd:  []string{"sh", "-c", `(sleep 300 & echo "orphan $!" > "$REPORT"); exec sleep 301`},
			kill: []string{"orphan"},
		},
		{
			// Only the process group keeps this one.
			name:     "double fork without the descriptor",
			cmd:      []string{"sh", "-c", `(sleep 300 3>&- & echo "orphan $!" > "$REPORT"); exec sleep 301`},
			kill:     []string{"orphan"},
			noHoldFD: []string{"orphan"},
		},
		{
			// Only the descriptor keeps this one: it left the group.
			name:  "new session keeping the descriptor",
			needs: "setsid",
			cmd:   []string{"sh", "-c", `setsid sh -c "$1" & exec sleep 301`, "sh", `echo "daemon $$" > "$REPORT"; exec sleep 300`},
			kill:  []string{"daemon"},
		},
		{
			name:     "python subprocess worker",
			needs:    "python3",
			cmd:      []string{"python3", "-c", pyWorker},
			kill:     []string{"worker"},
			noHoldFD: []string{"worker"},
		},
		{
			name:  "make -j",
			needs: "make",
			cmd:   []string{"make", "-s", "-j2", "-f", makefile},
			kill:  []string{"one", "two"},
		},
	}
}

func TestGuardKilledTreeKeepsLock(t *testing.T) {
	for _, tc := range treeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needs != "" {
				if _, err := exec.LookPath(tc.needs); err != nil {
					t.Skipf("%s is not installed", tc.needs)
				}
			}
			t.Parallel()
			root := newRoot(t)
			rep := newPidReports(t)
			g := startTree(t, env(root, "REPORT="+rep.path), false,
				append([]string{loktBin(t), "guard", "tree", "--ttl", "1h", "--"}, tc.cmd...)...)
			names := append([]string{}, tc.kill...)
			for _, n := range tc.exitsAfter {
				names = append(names, n)
			}
			pids := rep.expect(t, names...)
			rec := waitChildRecorded(t, root, "tree")
			for _, n := range names {
				if strings.HasPrefix(tc.name, "new session") {
					continue
				}
				if pg := processGroup(t, pids[n]); pg != rec.PGID {
					t.Fatalf("%s (pid %d) is in process group %d, not the command's %d", n, pids[n], pg, rec.PGID)
				}
			}
			for _, n := range tc.noHoldFD {
				if fds := holdFileHolders(t, pids[n]); len(fds) > 0 {
					t.Fatalf("%s inherited the lock's descriptor after all: %v", n, fds)
				}
			}

			if err := syscall.Kill(g.pid(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if code := g.finish(t); code != -1 {
				t.Fatalf("guard exit %d after SIGKILL", code)
			}
			waitGone(t, "guard's command (parent-death signal)", rec.ChildPID)
			assertHeld(t, root, "tree", "guard and its command are dead, "+strings.Join(tc.kill, " and ")+" still run")
			for i, n := range tc.kill {
				rep.kill(t, n)
				if after, ok := tc.exitsAfter[n]; ok {
					waitGone(t, after, pids[after])
				}
				if i < len(tc.kill)-1 {
					assertHeld(t, root, "tree", n+" killed, "+strings.Join(tc.kill[i+1:], " and ")+" still run")
				}
			}
			assertFreeAtOnce(t, root, "tree", "the last process of the tree is gone")
		})
	}
}

// A daemon that detaches the way daemons do (a new session, and the
// inherited descriptors closed) does not keep the lock: not when guard is
// killed, and not when its command exits normally.
func TestGuardDetachedDaemonDoesNotKeepLock(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid(1) is not installed")
	}
	const daemon = `exec 3>&-; echo "daemon $$" > "$REPORT"; echo up; exec sleep 300 >/dev/null`
	t.Run("guard killed", func(t *testing.T) {
		t.Parallel()
		root := newRoot(t)
		rep := newPidReports(t)
		g := startTree(t, env(root, "REPORT="+rep.path), false, loktBin(t), "guard", "d", "--", "sh", "-c",
			`setsid sh -c "$1" >/dev/null & exec sleep 301`, "sh", daemon)
		pid := rep.expect(t, "daemon")["daemon"]
		rec := waitChildRecorded(t, root, "d")
		// Reported only after it left the group and closed descriptor 3.
		if pg := processGroup(t, pid); pg == rec.PGID {
			t.Fatalf("the daemon is still in the command's process group %d", pg)
		}
		if err := syscall.Kill(g.pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		g.finish(t)
		waitGone(t, "guard's command", rec.ChildPID)
		assertFreeAtOnce(t, root, "d", "guard killed, only a detached daemon runs")
		if processGone(pid) {
			t.Fatal("the daemon died too; the test proves nothing")
		}
	})
	t.Run("normal exit", func(t *testing.T) {
		t.Parallel()
		root := newRoot(t)
		rep := newPidReports(t)
		fifo := filepath.Join(t.TempDir(), "up")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		// The command returns once the daemon says it has detached.
		g := startTree(t, env(root, "REPORT="+rep.path, "UP="+fifo), false, loktBin(t), "guard", "d", "--", "sh", "-c",
			`setsid sh -c "$1" > "$UP" & read up < "$UP"`, "sh", daemon)
		pid := rep.expect(t, "daemon")["daemon"]
		if code := g.finish(t); code != 0 {
			t.Fatalf("guard exit %d: %s", code, g.errText())
		}
		if s := g.errText(); s != "" {
			t.Errorf("guard warned about a detached daemon: %s", s)
		}
		assertReleased(t, root, "d")
		if processGone(pid) {
			t.Fatal("the daemon died; the test proves nothing")
		}
	})
}

// guard's command ends normally, leaving a background job: guard exits
// with the command's code, says the lock stays held, and it is held until
// the job exits, then free at once.
func TestGuardNormalExitLeavesJob(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		rounds       int
	}{
		{"job keeps the descriptor", `sleep 300 & echo "job $!" > "$REPORT"; exit 7`, 1},
		{"job closed the descriptor", `sleep 300 3>&- & echo "job $!" > "$REPORT"; exit 7`, 1},
		// The command is gone before guard can read its start: the group
		// must be recorded all the same. A race, so a few rounds.
		{"command exits at once", `sh -c 'echo "job $$" > "$REPORT"; exec sleep 300' 3>&- & exit 7`, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for range tc.rounds {
				guardLeavesJob(t, tc.script)
			}
		})
	}
}

func guardLeavesJob(t *testing.T, script string) {
	t.Helper()
	root := newRoot(t)
	rep := newPidReports(t)
	g := startTree(t, env(root, "REPORT="+rep.path), false, loktBin(t), "guard", "job", "--", "sh", "-c", script)
	job := rep.expect(t, "job")["job"]
	if code := g.finish(t); code != 7 {
		t.Fatalf("guard exit %d, want the command's 7; stderr: %s", code, g.errText())
	}
	if s := g.errText(); !strings.Contains(s, "stays held") {
		t.Errorf("guard did not warn that the lock stays held: %q", s)
	}
	rec, ok := statusLock(t, root, "job")
	if !ok {
		t.Fatal("guard released the lock while its command's job still runs")
	}
	if pg := processGroup(t, job); pg != rec.PGID {
		t.Fatalf("job in process group %d, record says %d", pg, rec.PGID)
	}
	assertHeld(t, root, "job", "guard exited, its command's job still runs")
	rep.kill(t, "job")
	assertFreeAtOnce(t, root, "job", "the job is gone")
}

// waitChildRecorded waits until guard has recorded its command and the
// command's own process group, with kept evidence.
func waitChildRecorded(t *testing.T, root, name string) fullLock {
	t.Helper()
	var rec fullLock
	pollFor(t, waitLong, "guard to record its command's process group", func() bool {
		var ok bool
		rec, ok = statusLock(t, root, name)
		return ok && rec.ChildPID != 0 && rec.PGID == rec.ChildPID && rec.Kept
	})
	if rec.PIDNS != proc.Namespace() {
		t.Errorf("record's pid_ns %q, this namespace is %q", rec.PIDNS, proc.Namespace())
	}
	return rec
}

// processGroup reads field 5 (pgrp) of /proc/PID/stat.
func processGroup(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	pg, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return pg
}
