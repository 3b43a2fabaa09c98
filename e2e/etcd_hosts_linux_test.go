package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/etcdtest"
)

// hostNS are the namespaces that make a process another "host" of one
// etcd cluster: its own host name, its own pids and /proc.
var hostNS = []string{"--uts", "--pid", "--fork", "--mount-proc"}

// onHost is the command that runs argv as "host" name. Its shell stays the
// namespace's init, so that argv (a guard) can die while what it started
// lives on: killing an init would take the whole namespace along.
func onHost(t *testing.T, name string, argv ...string) []string {
	return unshareCmd(t, hostNS, append([]string{"sh", "-c", `hostname "$0" || exit 99; "$@" & exec sleep 600`, name}, argv...)...)
}

// runOnHost runs lokt args as host name, to its end (its namespace and
// whatever lokt started in it end with it).
func runOnHost(t *testing.T, envv []string, name string, args ...string) result {
	t.Helper()
	argv := unshareCmd(t, hostNS, append([]string{"sh", "-c", `hostname "$0" || exit 99; exec "$@"`, name, loktBin(t)}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = envv
	return wait(t, cmd)
}

// descendants lists pid's descendants, parents before children.
func descendants(pid int) []int {
	var out []int
	for next := []int{pid}; len(next) > 0; {
		p := next[0]
		next = next[1:]
		kids := children(p)
		out = append(out, kids...)
		next = append(next, kids...)
	}
	return out
}

// cmdline is the argument vector of pid ("" once it is gone).
func cmdline(pid int) []string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// findProc is the first descendant of pid whose argument vector starts with
// prefix, 0 if none.
func findProc(pid int, prefix ...string) int {
	for _, p := range descendants(pid) {
		if args := cmdline(p); len(args) >= len(prefix) && slices.Equal(args[:len(prefix)], prefix) {
			return p
		}
	}
	return 0
}

// Holders on two "hosts" (UTS and PID namespaces with their own host
// names) share one etcd. The record shows the holder's host; the other
// host is refused while the holder's guard lives. A SIGKILLed guard's lock
// outlives it for as long as its lease, and never less, whatever lives on
// of its command on its host (which no other host can see); then the
// other host takes it.
func TestEtcdHostsGuardKilledEndsWithLease(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	rep := newPidReports(t)
	const prefix = "hosts"
	envv := etcdEnv(t, c, prefix, "LOKT_ETCD_LEASE_TTL=2s", "REPORT="+rep.path)

	// Host a's guard runs a command that leaves a job behind: the job is
	// what would still "hold" the lock on a file root.
	a := startTree(t, envv, false, onHost(t, "host-a", loktBin(t), "guard", "g", "--", "sh", "-c",
		`sleep 300 & echo ready > "$REPORT"; wait`)...)
	rep.await(t, "ready")
	guard := findProc(a.pid(), loktBin(t), "guard")
	if guard == 0 {
		t.Fatalf("guard not found under %d", a.pid())
	}
	// The job's shell may report before the forked job has exec'd sleep
	// (its pid inside the namespace means nothing out here).
	var job int
	pollFor(t, 30*time.Second, "host-a's job to exec sleep", func() bool {
		job = findProc(a.pid(), "sleep", "300")
		return job != 0
	})

	r := runOnHost(t, envv, "host-b", "status", "g", "--json")
	var st struct {
		Locks []fullLock `json:"locks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 || len(st.Locks) != 1 {
		t.Fatalf("status on host-b: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if l := st.Locks[0]; l.Host != "host-a" || !l.Kept {
		t.Fatalf("host-b sees g held by host %q (kept %v), want host-a's guard keeping a lease", l.Host, l.Kept)
	}
	// Refused, and told the lock ends with host-a's lease (not that it
	// is held until someone unlocks it, as a file root's would be).
	if r := runOnHost(t, envv, "host-b", "guard", "g", "--", "true"); r.code != 2 || !strings.Contains(r.stderr, "host-a") ||
		!strings.Contains(r.stderr, "keeps it on a lease") || strings.Contains(r.stderr, "until unlocked") {
		t.Fatalf("host-b's guard while host-a's runs: exit %d, stderr %q; want 2 naming host-a and its lease", r.code, r.stderr)
	}
	if r := runOnHost(t, envv, "host-b", "why", "g"); r.code != 2 || !strings.Contains(r.stdout, "keeps it on a lease") ||
		strings.Contains(r.stdout, "until its holder releases it (or") || strings.Contains(r.stdout, "keep it held while they run") {
		t.Fatalf("why g on host-b: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runOnHost(t, envv, "host-b", "unlock", "g"); r.code == 0 || !strings.Contains(r.stderr, "lease") {
		t.Fatalf("unlock g on host-b: exit %d, stderr %q; want a refusal naming the lease", r.code, r.stderr)
	}

	lease := etcdHolderLease(t, cli, prefix, "g")
	killed := time.Now()
	if err := syscall.Kill(guard, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "host-a's guard", guard)
	// The guard is dead, its job lives. Until the lease ends, host-b is
	// refused; if the machine was slow enough for the lease to end first,
	// the lease's end must come before host-b's grant, which the check
	// after it shows.
	r = runOnHost(t, envv, "host-b", "guard", "g", "--", "true")
	switch alive := leaseAlive(t, cli, lease); {
	case r.code == 0 && alive:
		t.Fatalf("host-b took g while host-a's lease was still alive (%s after the kill)", time.Since(killed))
	case r.code == 0:
		t.Logf("host-b took g right after the kill (%s): the lease had ended first (a slow machine)", time.Since(killed))
	case r.code != 2:
		t.Fatalf("host-b right after host-a's guard was killed: exit %d: %s", r.code, r.stderr)
	default:
		// Refused, as it should be while the lease lives.
		r = runOnHost(t, envv, "host-b", "guard", "g", "--wait", "--timeout", "1m", "--", "true")
		if r.code != 0 {
			t.Fatalf("host-b waiting for the lease to end: exit %d: %s", r.code, r.stderr)
		}
		if leaseAlive(t, cli, lease) {
			t.Fatal("host-b took g while host-a's lease was still alive")
		}
		t.Logf("host-b took g %s after host-a's guard was SIGKILLed (lease TTL 2s)", time.Since(killed).Round(time.Millisecond))
	}
	if processGone(job) {
		t.Fatal("host-a's job ended: the test proves nothing about locks outliving commands")
	}
}
