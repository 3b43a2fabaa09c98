//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lokt-dev/lokt/internal/etcdtest"
	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/internal/testbin"
)

// Slots and shared holders on etcd: the file backend's hammer and
// reader/writer tests on a real member, then one name's record, leases and
// messages looked at from the outside.
func TestEtcdSlotsAndShared(t *testing.T) {
	c := etcdtest.Start(t, 1)
	lokt := func(envv []string, args ...string) result {
		t.Helper()
		cmd := exec.Command(testbin.Path(t), args...)
		cmd.Env = envv
		return wait(t, cmd)
	}

	t.Run("hammer", func(t *testing.T) {
		envv := etcdEnv(t, c, "slots-hammer")
		const procs, rounds = 6, 4
		slotsHammer(t, envv, procs, rounds)
		if r := lokt(envv, "exists", "pool"); r.code != 3 {
			t.Errorf("pool after the hammer: exists exit %d %s", r.code, r.stderr)
		}
		r := lokt(envv, "audit", "--name", "pool", "--json")
		if n := strings.Count(r.stdout, `"event":"acquire"`); n != procs*rounds {
			t.Errorf("%d acquisitions in the shared trail, want %d", n, procs*rounds)
		}
		if !strings.Contains(r.stdout, `"slots":3`) {
			t.Errorf("the trail does not carry the slot count:\n%.2000s", r.stdout)
		}
	})

	t.Run("shared", func(t *testing.T) {
		sharedWriterNotStarved(t, etcdEnv(t, c, "shared"), 2)
	})

	t.Run("leases", func(t *testing.T) {
		const prefix = "slots-leases"
		envv := etcdEnv(t, c, prefix, "LOKT_ETCD_LEASE_TTL=3s")
		cli := etcdClient(t, c)
		var guards []*bgLokt
		var children []int
		for range 2 {
			g := startLokt(t, envv, "guard", "x", "--slots", "2", "--", "sh", "-c", "echo ready $$; exec sleep 60")
			guards = append(guards, g)
			children = append(children, readyPID(t, g))
		}
		// The record is on no lease (each holder has its own), and a lokt
		// that knows only protocol 1 refuses it untouched.
		kv := etcdGet(t, cli, prefix+"/locks/x")
		if kv == nil {
			t.Fatal("no record for x with two slot holders")
		}
		if kv.Lease != 0 {
			t.Errorf("the version 2 record is on lease %x; one holder's lease must not take the others' entries", kv.Lease)
		}
		var future *lockfile.FutureVersionError
		if _, err := lockfile.DecodeLock(kv.Value); !errors.As(err, &future) || future.Version != 2 {
			t.Errorf("protocol 1 decoder on the etcd record: %v", err)
		}
		if n := etcdCount(t, cli, prefix+"/holders/x/"); n != 2 {
			t.Errorf("%d evidence keys for two holders", n)
		}
		// Full, and a caller with another count is bad input.
		if r := lokt(envv, "lock", "x", "--slots", "2", "--pid", "0", "--ttl", "1m"); r.code != 2 {
			t.Fatalf("third holder of two slots: exit %d %s", r.code, r.stderr)
		}
		if r := lokt(envv, "lock", "x", "--slots", "3", "--pid", "0", "--ttl", "1m"); r.code != 1 || !strings.Contains(r.stderr, "--slots 2") {
			t.Fatalf("mismatched slot count: exit %d %s", r.code, r.stderr)
		}
		if r := lokt(envv, "lock", "x", "--shared", "--pid", "0", "--ttl", "1m"); r.code != 2 {
			t.Fatalf("shared holder of a full slot name: exit %d %s", r.code, r.stderr)
		}
		if hs := statusHolders(t, lokt(envv, "status", "x", "--json")); len(hs) != 2 || hs[0].State != "live" || hs[1].State != "live" {
			t.Fatalf("status of two live slot holders: %+v", hs)
		}

		// SIGKILL the first guard and its command: the slot stays taken
		// while its lease lives, and is free once it ends.
		_ = syscall.Kill(-guards[0].cmd.Process.Pid, syscall.SIGKILL)
		_ = syscall.Kill(-children[0], syscall.SIGKILL)
		_ = syscall.Kill(children[0], syscall.SIGKILL)
		guards[0].finish(t, 30*time.Second)
		pollFor(t, 30*time.Second, "the killed command to exit", func() bool { return processGone(children[0]) })
		before := etcdCount(t, cli, prefix+"/holders/x/")
		r := lokt(envv, "lock", "x", "--slots", "2", "--pid", "0", "--ttl", "1m")
		after := etcdCount(t, cli, prefix+"/holders/x/")
		switch {
		case before == 2 && after == 2 && r.code != 2:
			t.Fatalf("a slot was taken while the killed holder's lease lived: exit %d %s", r.code, r.stderr)
		case before != 2 || after != 2:
			t.Logf("the lease ended before the check could run (%d, %d evidence keys); not checked", before, after)
		}
		if r.code != 0 {
			if r := lokt(envv, "lock", "x", "--slots", "2", "--pid", "0", "--ttl", "1m", "--wait", "--timeout", "1m"); r.code != 0 {
				t.Fatalf("slot after the lease ended: exit %d %s", r.code, r.stderr)
			}
		}
		if hs := statusHolders(t, lokt(envv, "status", "x", "--json")); len(hs) != 2 || hs[0].PID != guards[1].cmd.Process.Pid || hs[1].PID != 0 {
			t.Fatalf("status after the slot changed hands: %+v", hs)
		}
		if a := lokt(envv, "audit", "--name", "x", "--json"); !strings.Contains(a.stdout, `"event":"stale-break"`) {
			t.Errorf("no stale-break of the killed holder in the trail:\n%s", a.stdout)
		}

		// The other guard and the lock leave; the record goes with them.
		guards[1].signal(t, syscall.SIGTERM)
		guards[1].finish(t, 30*time.Second)
		if r := lokt(envv, "unlock", "x"); r.code != 0 {
			t.Fatalf("unlock the last slot: exit %d %s", r.code, r.stderr)
		}
		if kv := etcdGet(t, cli, prefix+"/locks/x"); kv != nil {
			t.Fatalf("record left after every holder left: %s", kv.Value)
		}
	})
}

type statusHolder struct {
	PID   int    `json:"pid"`
	State string `json:"state"`
}

// statusHolders is the holder list of the only lock in a status --json.
func statusHolders(t *testing.T, r result) []statusHolder {
	t.Helper()
	var st struct {
		Locks []struct {
			Holders []statusHolder `json:"holders"`
		} `json:"locks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 || len(st.Locks) != 1 {
		t.Fatalf("status --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	return st.Locks[0].Holders
}

func etcdClient(t *testing.T, c *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// etcdGet returns key's value and lease, nil if it does not exist.
func etcdGet(t *testing.T, cli *clientv3.Client, key string) *struct {
	Value []byte
	Lease int64
} {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Kvs) == 0 {
		return nil
	}
	return &struct {
		Value []byte
		Lease int64
	}{res.Kvs[0].Value, res.Kvs[0].Lease}
}

func etcdCount(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return res.Count
}
