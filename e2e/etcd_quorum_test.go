//go:build unix

package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/etcdtest"
	"github.com/lokt-dev/lokt/internal/testbin"
)

// statusJSON is `lokt status --json` as these tests read it.
type statusJSON struct {
	Locks []struct {
		Name   string `json:"name"`
		LockID string `json:"lock_id"`
	} `json:"locks"`
	Freezes []struct {
		Name string `json:"name"`
	} `json:"freezes"`
}

func parseStatus(t *testing.T, r result) statusJSON {
	t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	return st
}

// A 3-member cluster loses quorum (two members SIGSTOPped) while a guard
// holds a lock. Every command is exit 1 within a bound, naming the
// endpoints and the cause; status never says there are no locks. Once the
// members resume, service resumes, nothing the failed commands tried was
// done, and the guard either held on throughout or, had the outage
// outlasted its lease, said it lost the lock, which then ended with the
// lease (the documented semantics).
func TestEtcdQuorumLoss(t *testing.T) {
	c := etcdtest.Start(t, 3)
	envv := etcdEnv(t, c, "quorum", "LOKT_ETCD_LEASE_TTL=10s")
	lokt := func(extra []string, args ...string) result {
		t.Helper()
		cmd := exec.Command(testbin.Path(t), args...)
		cmd.Env = append(envv[:len(envv):len(envv)], extra...)
		return wait(t, cmd)
	}
	must := func(want int, args ...string) result {
		t.Helper()
		r := lokt(nil, args...)
		if r.code != want {
			t.Fatalf("lokt %v: exit %d, want %d\n%s%s", args, r.code, want, r.stdout, r.stderr)
		}
		return r
	}

	g := startLokt(t, envv, "guard", "held", "--", "sh", "-c", `echo ready $$; read -r _ || exit 0`)
	readyPID(t, g)
	before := parseStatus(t, must(0, "status", "held", "--json"))
	if len(before.Locks) != 1 {
		t.Fatalf("status held: %+v", before)
	}
	must(0, "lock", "kept", "--ttl", "5m")
	must(0, "freeze", "fz", "--ttl", "5m")

	c.Members[0].Stop()
	c.Members[1].Stop()
	stopped := true
	defer func() {
		if stopped {
			c.Members[0].Cont()
			c.Members[1].Cont()
		}
	}()
	cmds := [][]string{
		{"lock", "z", "--ttl", "1m"},
		{"lock", "z", "--ttl", "1m", "--wait", "--timeout", "5s"},
		{"unlock", "kept"},
		{"unlock", "held", "--force"},
		{"status"},
		{"status", "--json"},
		{"exists", "kept"},
		{"why", "held"},
		{"guard", "z", "--", "true"},
		{"freeze", "z", "--ttl", "1m"},
		{"unfreeze", "fz"},
		{"audit"},
	}
	// All at once: they are independent, and the outage stays short.
	results := make([]result, len(cmds))
	took := make([]time.Duration, len(cmds))
	var wg sync.WaitGroup
	for i, args := range cmds {
		cmd := exec.Command(testbin.Path(t), args...)
		cmd.Env = append(envv[:len(envv):len(envv)], "LOKT_ETCD_TIMEOUT=1s")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		wg.Go(func() {
			start := time.Now()
			err := cmd.Run()
			took[i] = time.Since(start)
			results[i] = result{code: statusOf(err), stdout: out.String(), stderr: errb.String()}
		})
	}
	wg.Wait()
	for i, r := range results {
		named := true
		for _, ep := range c.Endpoints() {
			named = named && strings.Contains(r.stderr, ep)
		}
		if r.code != 1 || !named || !strings.Contains(r.stderr, "no quorum") {
			t.Errorf("lokt %v without quorum: exit %d, stdout %q, stderr %q; want exit 1 naming the endpoints and the cause", cmds[i], r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "no locks") || strings.Contains(r.stdout, `"locks"`) {
			t.Errorf("lokt %v without quorum printed a state it could not read: %q", cmds[i], r.stdout)
		}
		// A hang check, not a timing assertion: the bound is the 1s
		// timeout (5s for the --wait), with room for a loaded machine.
		if took[i] > 30*time.Second {
			t.Errorf("lokt %v without quorum took %s", cmds[i], took[i])
		}
	}

	c.Members[0].Cont()
	c.Members[1].Cont()
	stopped = false
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Nothing the failed commands tried was done.
	after := parseStatus(t, must(0, "status", "--json"))
	must(3, "exists", "z")
	must(0, "exists", "kept")
	var freezes []string
	for _, f := range after.Freezes {
		freezes = append(freezes, f.Name)
	}
	if strings.Join(freezes, ",") != "fz" {
		t.Errorf("freezes after the outage: %v, want fz alone (freeze z failed, unfreeze fz failed)", freezes)
	}
	heldID := "" // the lock id of held after the outage
	for _, l := range after.Locks {
		if l.Name == "held" {
			heldID = l.LockID
		}
	}

	// The guard held on, or said it lost the lock.
	_ = g.stdin.Close()
	if code := g.finish(t, time.Minute); code == 0 {
		if heldID != before.Locks[0].LockID {
			t.Fatalf("the guard ended well, but after the outage held was %q, not its lock %s", heldID, before.Locks[0].LockID)
		}
		must(3, "exists", "held")
		t.Log("the guard kept its lease through the outage")
	} else {
		if !strings.Contains(g.stderr.all(), "lost") {
			t.Fatalf("guard exit %d without saying it lost the lock:\n%s", code, g.stderr.all())
		}
		must(0, "lock", "held", "--ttl", "1m", "--wait", "--timeout", "1m")
		t.Logf("the outage outlasted the guard's lease: %s", g.stderr.all())
	}
	// Service resumed.
	must(0, "lock", "z", "--ttl", "1m")
	must(0, "unlock", "z")
	must(0, "unlock", "kept")
	must(0, "unfreeze", "fz")
}
