//go:build !lokt_slim

package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lokt-dev/lokt/internal/backend"
	"github.com/lokt-dev/lokt/internal/etcdtest"
)

// putEtcdRecord writes key (NS/NAME) under the backend's prefix.
func putEtcdRecord(ts *testscript.TestScript, sp *backend.Spec, key, data string) {
	s, err := sp.Open(ts.Getenv)
	ts.Check(err)
	defer func() { _ = s.Close() }()
	_, err = s.Client().Put(context.Background(), s.Prefix()+"/"+key, data)
	ts.Check(err)
}

// getEtcdRecord reads key (NS/NAME) under the backend's prefix.
func getEtcdRecord(ts *testscript.TestScript, sp *backend.Spec, key string) string {
	s, err := sp.Open(ts.Getenv)
	ts.Check(err)
	defer func() { _ = s.Close() }()
	res, err := s.Client().Get(context.Background(), s.Prefix()+"/"+key)
	ts.Check(err)
	if len(res.Kvs) == 0 {
		ts.Fatalf("record %s does not exist", key)
	}
	return string(res.Kvs[0].Value)
}

// etcdTestFactory is auditTestFactory on the etcd backend, with the shared
// audit trail as observer.
func etcdTestFactory(t *testing.T, backendURL string) (*Factory, *auditTestBuffer, *auditTestBuffer) {
	f, out, errOut := auditTestFactory(t, t.TempDir()+"/unused", "LOKT_BACKEND", backendURL)
	f.EtcdObserver = etcdAuditObserver
	return f, out, errOut
}

// The audit trail on etcd is one for every client: events written by other
// processes show in order, --tail follows them from a watch, and filters
// apply.
func TestAuditEtcdTrailAndTail(t *testing.T) {
	c := etcdtest.Start(t, 1)
	url := c.Backend("audit")
	run := func(args ...string) {
		t.Helper()
		f, _, errOut := etcdTestFactory(t, url)
		if code := Run(f, args); code != 0 {
			t.Fatalf("lokt %v: exit %d: %s", args, code, errOut.String())
		}
	}
	run("lock", "one", "--pid", "0", "--ttl", "1h")
	run("unlock", "one")

	f, out, _ := etcdTestFactory(t, url)
	if err := runAudit(t.Context(), f, &AuditOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "acquire") || !strings.Contains(lines[2], "release") {
		t.Fatalf("audit on etcd, want a header, acquire, release:\n%s", out.String())
	}

	f, out, errOut := etcdTestFactory(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runAudit(ctx, f, &AuditOptions{Tail: true, JSON: true, Name: "two", ready: func() { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("tail ended early: %v", err)
	}
	if !strings.Contains(errOut.String(), "following the audit trail") {
		t.Errorf("no following notice: %q", errOut.String())
	}
	run("lock", "skipped", "--pid", "0", "--ttl", "1h")
	run("lock", "two", "--pid", "0", "--ttl", "1h")
	out.waitFor(t, `"name":"two"`)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("interrupted tail must end cleanly, got %v", err)
	}
	if strings.Contains(out.String(), "skipped") || strings.Contains(out.String(), `"name":"one"`) {
		t.Fatalf("tail without --since showed old or filtered events:\n%s", out.String())
	}
}
