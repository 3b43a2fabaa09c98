package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/lokt-dev/lokt/internal/etcdtest"
	"github.com/lokt-dev/lokt/internal/testbin"
)

// A slot holder and a waiter on other hosts (UTS namespaces with their own
// host names), whose pids lokt cannot check here, are SIGKILLed: the slot
// stays taken while the holder's lease lives, and once the leases end the
// holder's entry is dead and the waiter is out of the line at once (not
// when its entry would expire), so the slot is free.
func TestEtcdSlotsOtherHostsKilled(t *testing.T) {
	c := etcdtest.Start(t, 1)
	const prefix = "slots-hosts"
	rep := newPidReports(t)
	envv := etcdEnv(t, c, prefix, "LOKT_ETCD_LEASE_TTL=3s", "REPORT="+rep.path)
	cli := etcdClient(t, c)
	lokt := func(args ...string) result {
		t.Helper()
		cmd := exec.Command(testbin.Path(t), args...)
		cmd.Env = envv
		return wait(t, cmd)
	}
	const holderInner = `hostname lokt-holder-host && exec "$0" guard x --slots 1 -- sh -c "$1"`
	g := startTree(t, envv, false, unshareCmd(t, []string{"--uts"}, "sh", "-c", holderInner, loktBin(t),
		`echo "top $$" > "$REPORT"; exec sleep 300`)...)
	rep.expect(t, "top")
	if r := lokt("lock", "x", "--slots", "1", "--pid", "0", "--ttl", "1m"); r.code != 2 || !strings.Contains(r.stderr, "another host") {
		t.Fatalf("slot held on another host: exit %d %s", r.code, r.stderr)
	}
	const waiterInner = `hostname lokt-waiter-host && exec "$0" guard x --slots 1 --wait --timeout 5m -- true`
	w := startTree(t, envv, false, unshareCmd(t, []string{"--uts"}, "sh", "-c", waiterInner, loktBin(t))...)
	pollFor(t, waitLong, "the other host's waiter to be in line", func() bool {
		return len(lineOf(t, lokt("status", "x", "--json"))) == 1
	})

	for _, p := range []*treeProc{w, g} {
		if err := syscall.Kill(p.pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.finish(t)
	}
	before := etcdCount(t, cli, prefix+"/holders/x/")
	r := lokt("lock", "x", "--slots", "1", "--pid", "0", "--ttl", "1m")
	after := etcdCount(t, cli, prefix+"/holders/x/")
	switch {
	case before == 2 && after == 2 && r.code != 2:
		t.Fatalf("the slot was taken while the killed holder's lease lived: exit %d %s", r.code, r.stderr)
	case before != 2 || after != 2:
		t.Logf("a lease ended before the check could run (%d, %d evidence keys); not checked", before, after)
	}
	pollFor(t, waitLong, "the killed guards' leases to end", func() bool {
		return etcdCount(t, cli, prefix+"/holders/x/") == 0
	})
	// The waiter's entry would last another 15 s or more by its
	// expires_at; its lease has ended, so it is out of the line now.
	if line := lineOf(t, lokt("status", "x", "--json")); len(line) != 0 {
		t.Fatalf("the killed waiter is still in line after its lease ended: %s", line)
	}
	if r := lokt("lock", "x", "--slots", "1", "--pid", "0", "--ttl", "1m"); r.code != 0 {
		t.Fatalf("slot after the other host's leases ended: exit %d %s", r.code, r.stderr)
	}
}

// lineOf is the waiter list of the only lock in a status --json.
func lineOf(t *testing.T, r result) []json.RawMessage {
	t.Helper()
	var st struct {
		Locks []struct {
			Waiters []json.RawMessage `json:"waiters"`
		} `json:"locks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Locks) > 1 {
		t.Fatalf("status --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(st.Locks) == 0 {
		return nil
	}
	return st.Locks[0].Waiters
}
