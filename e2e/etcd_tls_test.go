//go:build unix

package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/etcdtest"
	"github.com/lokt-dev/lokt/internal/testbin"
)

// A cluster that serves clients over TLS only and wants a client
// certificate: lokt works through LOKT_ETCD_CACERT/CERT/KEY, doctor says
// TLS and passes, and the wrong CA, a missing client certificate or no TLS
// at all are exit 1 naming the cause, within the timeout.
func TestEtcdTLS(t *testing.T) {
	c, files := etcdtest.StartTLS(t, 1)
	good := []string{"LOKT_ETCD_CACERT=" + files.CA, "LOKT_ETCD_CERT=" + files.ClientCert, "LOKT_ETCD_KEY=" + files.ClientKey, "LOKT_ETCD_TIMEOUT=2s"}
	lokt := func(extra []string, args ...string) result {
		t.Helper()
		cmd := exec.Command(testbin.Path(t), args...)
		cmd.Env = etcdEnv(t, c, "tls", extra...)
		return wait(t, cmd)
	}
	must := func(want int, args ...string) result {
		t.Helper()
		r := lokt(good, args...)
		if r.code != want {
			t.Fatalf("lokt %v over TLS: exit %d, want %d\n%s%s", args, r.code, want, r.stdout, r.stderr)
		}
		return r
	}
	must(0, "lock", "a", "--ttl", "1m")
	if r := must(0, "status", "--json"); !strings.Contains(r.stdout, `"name": "a"`) {
		t.Fatalf("status over TLS does not show a:\n%s", r.stdout)
	}
	must(2, "guard", "a", "--", "true")
	must(0, "unlock", "a")
	must(3, "exists", "a")
	if r := must(0, "guard", "g", "--", "sh", `-c`, `echo "token $LOKT_TOKEN"`); !strings.Contains(r.stdout, "token ") || strings.Contains(r.stdout, "token \n") {
		t.Fatalf("guard over TLS gave its command no token: %q", r.stdout)
	}
	rep := doctorReport(t, must(0, "doctor", "--json"))
	var sec string
	for _, ch := range rep.Checks {
		if ch.Status == "fail" {
			t.Errorf("doctor check %s failed on a healthy TLS cluster: %s", ch.Name, ch.Message)
		}
		if ch.Name == "tls-auth" {
			sec = ch.Status + ": " + ch.Message
		}
	}
	if !strings.HasPrefix(sec, "ok: TLS") {
		t.Errorf("doctor's tls-auth check says %q, want ok naming TLS", sec)
	}

	for _, bad := range []struct {
		what  string
		extra []string
		cause string // in the message
		args  []string
	}{
		{"the wrong CA", []string{"LOKT_ETCD_CACERT=" + files.OtherCA, "LOKT_ETCD_CERT=" + files.ClientCert, "LOKT_ETCD_KEY=" + files.ClientKey},
			"x509: certificate signed by unknown authority", []string{"lock", "b", "--ttl", "1m"}},
		{"no client certificate", []string{"LOKT_ETCD_CACERT=" + files.CA}, "client certificate", []string{"status"}},
		{"no TLS", nil, "TLS", []string{"status"}},
	} {
		start := time.Now()
		r := lokt(append(bad.extra, "LOKT_ETCD_TIMEOUT=1s"), bad.args...)
		took := time.Since(start)
		if r.code != 1 || !strings.Contains(r.stderr, c.Members[0].Endpoint()) || !strings.Contains(r.stderr, bad.cause) || strings.Contains(r.stdout, "no locks") {
			t.Errorf("lokt %v with %s: exit %d, stdout %q, stderr %q; want exit 1 naming the endpoint and %q", bad.args, bad.what, r.code, r.stdout, r.stderr, bad.cause)
		}
		// A hang check, not a timing assertion: the bound is the 1s
		// timeout, with room for a loaded machine.
		if took > 30*time.Second {
			t.Errorf("lokt %v with %s took %s", bad.args, bad.what, took)
		}
	}
	// The lock refused for want of a connection was not made.
	must(3, "exists", "b")
}
