//go:build !lokt_slim

package doctor

import (
	"context"
	"testing"
	"time"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/etcdstore"
	"github.com/lokt-dev/lokt/internal/etcdtest"
	"github.com/lokt-dev/lokt/store"
)

func etcdReport(t *testing.T, endpoints []string, timeout time.Duration) map[string]Check {
	t.Helper()
	s, err := etcdstore.Open(etcdstore.Config{Endpoints: endpoints, Prefix: "doctor-test", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	loc := lokt.Location{Dir: "etcd://" + endpoints[0] + "/doctor-test", Source: "env", Reason: "test"}
	rep := RunEtcd(EtcdOptions{Location: loc, Store: s, LeaseTTL: etcdstore.DefaultLeaseTTL})
	checks := map[string]Check{}
	for _, c := range rep.Checks {
		checks[c.Name] = c
	}
	return checks
}

// A healthy member passes every check; a garbage record under the prefix
// is reported, never touched.
func TestRunEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s, err := etcdstore.Open(etcdstore.Config{Endpoints: c.Endpoints(), Prefix: "doctor-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	err = s.Update(context.Background(), store.Key{NS: store.Locks, Name: "junk"}, func([]byte, uint64) (store.Change, error) {
		return store.Change{Op: store.Put, Data: []byte("not json")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := etcdReport(t, c.Endpoints(), 5*time.Second)
	for _, name := range []string{CheckEndpoints, CheckQuorum, CheckLease, CheckLeaseTTL} {
		if checks[name].Status != OK {
			t.Errorf("%s: %+v, want ok", name, checks[name])
		}
	}
	// Plain http without a user: a warning with advice, not a failure.
	if sec := checks[CheckSecurity]; sec.Status != Warn || sec.Remedy == "" {
		t.Errorf("tls-auth on plain http: %+v, want a warning with a remedy", sec)
	}
	if checks[CheckCorrupt].Status == OK {
		t.Errorf("corrupt record not reported: %+v", checks[CheckCorrupt])
	}
}

// An unreachable cluster is a failed report within the timeout, not a hang.
func TestRunEtcdUnreachable(t *testing.T) {
	c := etcdtest.Start(t, 1)
	eps := c.Endpoints()
	c.Kill()
	checks := etcdReport(t, eps, time.Second)
	for _, name := range []string{CheckEndpoints, CheckQuorum, CheckLease} {
		if checks[name].Status == OK {
			t.Errorf("%s ok on a dead cluster: %+v", name, checks[name])
		}
	}
}
