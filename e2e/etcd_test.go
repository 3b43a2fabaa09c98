//go:build unix

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/etcdtest"
	"github.com/lokt-dev/lokt/internal/testbin"
)

// etcdEnv is env() for a root on the etcd cluster c under prefix.
func etcdEnv(t *testing.T, c *etcdtest.Cluster, prefix string, extra ...string) []string {
	return env(filepath.Join(t.TempDir(), "unused-root"), append([]string{"LOKT_BACKEND=" + c.Backend(prefix)}, extra...)...)
}

// Sixteen shells race `lokt lock` for one name on etcd: exactly one wins
// each round.
func TestEtcdContentionOneWinner(t *testing.T) {
	c := etcdtest.Start(t, 1)
	envv := etcdEnv(t, c, "contention")
	for round := range 10 {
		name := fmt.Sprintf("race-%d", round)
		callers := make([]*caller, contenders)
		for i := range callers {
			callers[i] = newCaller(t, envv, "", "lock", name, "--ttl", "5m")
		}
		for _, cl := range callers {
			cl.fire(t)
		}
		codes := make([]int, contenders)
		for i, cl := range callers {
			codes[i] = cl.code(t)
		}
		assertOneWinner(t, round, callers, codes)
		for _, cl := range callers {
			cl.stop()
		}
	}
}

// hammer runs procs×iters guarded increments of a counter file, each of
// which also appends the fencing token of the lock it runs under. It
// returns the errors of failed runs.
func hammer(t *testing.T, envv []string, procs, iters int, dir string) []string {
	t.Helper()
	const critical = `n=$(cat "$COUNTER")
"$LOKT" status cnt --json | sed -n 's/.*"token": \([0-9]*\).*/\1/p' >> "$TOKENS"
echo $((n+1)) > "$COUNTER"`
	if err := os.WriteFile(filepath.Join(dir, "counter"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	envv = append(envv, "COUNTER="+filepath.Join(dir, "counter"), "TOKENS="+filepath.Join(dir, "tokens"), "LOKT="+testbin.Path(t))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for range procs {
		wg.Go(func() {
			for range iters {
				cmd := exec.Command(testbin.Path(t), "guard", "cnt", "--wait", "--timeout", "2m", "--quiet", "--", "sh", "-c", critical)
				cmd.Env = envv
				if out, err := cmd.CombinedOutput(); err != nil {
					mu.Lock()
					errs = append(errs, err.Error()+": "+string(out))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// checkHammer: the counter is exact and the tokens, in the order the
// critical sections ran, strictly increase.
func checkHammer(t *testing.T, dir string, want int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(want) {
		t.Fatalf("counter is %s after %d guarded increments: a double grant", got, want)
	}
	b, err = os.ReadFile(filepath.Join(dir, "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := strings.Fields(string(b))
	if len(tokens) != want {
		t.Fatalf("%d tokens recorded, want %d", len(tokens), want)
	}
	prev := uint64(0)
	for i, s := range tokens {
		tok, err := strconv.ParseUint(s, 10, 64)
		if err != nil || tok <= prev {
			t.Fatalf("token %d is %q after %d: fencing tokens must strictly increase", i, s, prev)
		}
		prev = tok
	}
}

// The counter hammer on etcd: guarded read-increment-write by eight
// processes ends exact, and fencing tokens strictly increase.
func TestEtcdGuardCounterHammer(t *testing.T) {
	c := etcdtest.Start(t, 1)
	dir := t.TempDir()
	for _, e := range hammer(t, etcdEnv(t, c, "hammer"), 8, 25, dir) {
		t.Error(e)
	}
	checkHammer(t, dir, 200)
}

// A 3-member cluster loses its leader in the middle of a hammer: no double
// grant, tokens still strictly increase. Then two members are stopped (no
// quorum): commands exit 1 naming the endpoints and change nothing; once
// they resume, service resumes.
func TestEtcdClusterFaults(t *testing.T) {
	c := etcdtest.Start(t, 3)
	dir := t.TempDir()
	envv := etcdEnv(t, c, "faults")
	done := make(chan []string)
	go func() { done <- hammer(t, envv, 4, 15, dir) }()
	// Kill the leader once the hammer is under way.
	tokens := filepath.Join(dir, "tokens")
	pollFor(t, time.Minute, "hammer progress", func() bool {
		b, _ := os.ReadFile(tokens)
		return strings.Count(string(b), "\n") >= 10
	})
	leader, err := c.Leader()
	if err != nil {
		t.Fatal(err)
	}
	leader.Kill()
	errs := <-done
	for _, e := range errs {
		// A command in flight when the leader died may fail (exit 1), but
		// never with a double grant: that shows in the counter.
		if !strings.Contains(e, "exit status 1") {
			t.Error(e)
		}
	}
	checkHammer(t, dir, 60-len(errs))
	if len(errs) > 0 {
		t.Logf("%d guarded runs failed with exit 1 during the leader change: %q", len(errs), errs)
	}
	if err := leader.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	// No quorum: two of three members stopped.
	c.Members[0].Stop()
	c.Members[1].Stop()
	short := append(envv[:len(envv):len(envv)], "LOKT_ETCD_TIMEOUT=1s")
	lokt := func(args ...string) result {
		cmd := exec.Command(testbin.Path(t), args...)
		cmd.Env = short
		return wait(t, cmd)
	}
	for _, args := range [][]string{
		{"lock", "z", "--ttl", "1m"},
		{"status"},
		{"freeze", "z", "--ttl", "1m"},
		{"guard", "z", "--", "true"},
	} {
		r := lokt(args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.Members[0].Endpoint()) || strings.Contains(r.stdout, "no locks") {
			t.Errorf("lokt %v without quorum: exit %d, stdout %q, stderr %q; want exit 1 naming the endpoints", args, r.code, r.stdout, r.stderr)
		}
	}
	c.Members[0].Cont()
	c.Members[1].Cont()
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Nothing was changed by the failed commands; service resumes.
	if r := lokt("exists", "z"); r.code != 3 {
		t.Fatalf("exists z after the outage: exit %d %s", r.code, r.stderr)
	}
	if r := lokt("status", "--json"); r.code != 0 || strings.Contains(r.stdout, `"freezes": [{`) || strings.Contains(r.stdout, `"name": "z"`) {
		t.Fatalf("status after the outage: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := lokt("lock", "z", "--ttl", "1m"); r.code != 0 {
		t.Fatalf("lock after the outage: exit %d %s", r.code, r.stderr)
	}
}

// A guard's lock on etcd is its lease: a SIGKILLed guard keeps it until
// the lease ends, and then another holder gets
// it; a guard stopped past its lease finds on SIGCONT that it lost the
// lock, says so, records it, and --kill-on-lost stops its command.
func TestEtcdGuardLease(t *testing.T) {
	c := etcdtest.Start(t, 1)
	lokt := func(envv []string, args ...string) result {
		cmd := exec.Command(testbin.Path(t), args...)
		cmd.Env = envv
		return wait(t, cmd)
	}

	t.Run("killed", func(t *testing.T) {
		envv := etcdEnv(t, c, "lease-killed", "LOKT_ETCD_LEASE_TTL=3s")
		g := startLokt(t, envv, "guard", "k", "--", "sh", "-c", "echo ready $$; exec sleep 60")
		child := readyPID(t, g)
		defer func() { _ = syscall.Kill(child, syscall.SIGKILL) }()
		cli, err := c.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cli.Close() }()
		lease := etcdHolderLease(t, cli, "lease-killed", "k")
		g.signal(t, syscall.SIGKILL)
		g.finish(t, 30*time.Second)
		// The lease outlives the guard by up to its TTL: the lock is held,
		// whatever became of the processes on this host. A machine slow
		// enough to get here after the lease ended sees it free, and the
		// lease's end (checked after the grant, in etcd itself) shows
		// that was no early break.
		switch r := lokt(envv, "lock", "k", "--pid", "0", "--ttl", "1m"); {
		case r.code == 0 && leaseAlive(t, cli, lease):
			t.Fatal("lock took k while the killed guard's lease was still alive")
		case r.code == 0:
			t.Log("the lease had ended before the lock right after the kill (a slow machine)")
			return
		case r.code != 2:
			t.Fatalf("lock right after guard was killed: exit %d %s", r.code, r.stderr)
		}
		// Then it ends with the lease, and another holder gets it.
		if r := lokt(envv, "lock", "k", "--pid", "0", "--ttl", "1m", "--wait", "--timeout", "1m"); r.code != 0 {
			t.Fatalf("lock after the lease ended: exit %d %s", r.code, r.stderr)
		}
		if leaseAlive(t, cli, lease) {
			t.Fatal("lock took k while the killed guard's lease was still alive")
		}
	})

	t.Run("stopped", func(t *testing.T) {
		envv := etcdEnv(t, c, "lease-stopped", "LOKT_ETCD_LEASE_TTL=2s")
		g := startLokt(t, envv, "guard", "s", "--kill-on-lost", "--", "sh", "-c", "echo ready $$; exec sleep 60")
		child := readyPID(t, g)
		_ = syscall.Kill(g.cmd.Process.Pid, syscall.SIGSTOP)
		if r := lokt(envv, "lock", "s", "--pid", "0", "--ttl", "1m", "--wait", "--timeout", "1m"); r.code != 0 {
			t.Fatalf("lock while the guard is stopped: exit %d %s", r.code, r.stderr)
		}
		_ = syscall.Kill(g.cmd.Process.Pid, syscall.SIGCONT)
		g.stderr.expect(t, "lock lost", 30*time.Second)
		if code := g.finish(t, 30*time.Second); code == 0 {
			t.Fatalf("guard that lost its lock exited 0")
		}
		pollFor(t, 30*time.Second, "the command to be stopped", func() bool { return processGone(child) })
		if r := lokt(envv, "audit", "--name", "s", "--json"); !strings.Contains(r.stdout, `"event":"lost"`) {
			t.Fatalf("no lost event in the shared trail:\n%s%s", r.stdout, r.stderr)
		}
	})

	// A lease cannot outlive guard: a job its command leaves running gets
	// no lock, and guard says so instead of claiming the lock stays held.
	t.Run("outlived", func(t *testing.T) {
		envv := etcdEnv(t, c, "lease-outlived")
		job := filepath.Join(t.TempDir(), "job")
		r := lokt(envv, "guard", "o", "--", "sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $! > "+job)
		if r.code != 0 {
			t.Fatalf("guard: exit %d %s", r.code, r.stderr)
		}
		b, err := os.ReadFile(job)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = syscall.Kill(pid, syscall.SIGKILL) }()
		if processGone(pid) {
			t.Fatal("the background job is gone already; the test proves nothing")
		}
		if !strings.Contains(r.stderr, "released while processes") || strings.Contains(r.stderr, "stays held") {
			t.Errorf("guard's warning: %q", r.stderr)
		}
		if r := lokt(envv, "exists", "o"); r.code != 3 {
			t.Errorf("exists after guard: exit %d %s (want 3: released)", r.code, r.stderr)
		}
	})
}

// With auth enabled on the cluster, the right user and password work and a
// wrong password is exit 1 saying so, changing nothing.
func TestEtcdAuth(t *testing.T) {
	c := etcdtest.Start(t, 1)
	if err := c.EnableAuth("root", "s3cret"); err != nil {
		t.Fatal(err)
	}
	lokt := func(extra []string, args ...string) result {
		cmd := exec.Command(testbin.Path(t), args...)
		cmd.Env = etcdEnv(t, c, "auth", extra...)
		return wait(t, cmd)
	}
	good := []string{"LOKT_ETCD_USER=root", "LOKT_ETCD_PASSWORD=s3cret"}
	bad := []string{"LOKT_ETCD_USER=root", "LOKT_ETCD_PASSWORD=wrong"}
	if r := lokt(bad, "lock", "a", "--ttl", "1m"); r.code != 1 || !strings.Contains(r.stderr, "authentication failed") {
		t.Fatalf("wrong password: exit %d %s", r.code, r.stderr)
	}
	if r := lokt(nil, "status"); r.code != 1 {
		t.Fatalf("no credentials on a cluster with auth: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := lokt(good, "exists", "a"); r.code != 3 {
		t.Fatalf("exists after the refused lock: exit %d %s", r.code, r.stderr)
	}
	if r := lokt(good, "lock", "a", "--ttl", "1m"); r.code != 0 {
		t.Fatalf("right password: exit %d %s", r.code, r.stderr)
	}
}
