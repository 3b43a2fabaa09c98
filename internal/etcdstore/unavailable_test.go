package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lokt-dev/lokt/internal/etcdtest"
	"github.com/lokt-dev/lokt/store"
)

// When no connection can be made, the error says why (the client alone
// would say only "context deadline exceeded", as for a cluster without
// quorum): a certificate the client does not trust, a client without the
// certificate the server wants, a plain client at a TLS server, nobody
// listening. And a cluster that answers over TLS works.
func TestUnavailableSaysWhy(t *testing.T) {
	c, files := etcdtest.StartTLS(t, 1)
	good, err := files.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := files
	wrongCA.CA = files.OtherCA
	untrusting, err := wrongCA.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	noCert := good.Clone()
	noCert.Certificates = nil
	for _, tc := range []struct {
		what string
		cfg  Config
		want []string // in the message, all of them
	}{
		{"the right CA and certificate", Config{Endpoints: c.Endpoints(), TLS: good}, nil},
		{"the wrong CA", Config{Endpoints: c.Endpoints(), TLS: untrusting}, []string{"no connection within 1s", "x509: certificate signed by unknown authority"}},
		{"no client certificate", Config{Endpoints: c.Endpoints(), TLS: noCert}, []string{"no connection within 1s", "requires client certificates"}},
		{"no TLS", Config{Endpoints: c.Endpoints()}, []string{"no connection within 1s", "serves TLS only"}},
		{"nobody listening", Config{Endpoints: []string{"127.0.0.1:1"}}, []string{"no connection within 1s", "connection refused"}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			tc.cfg.Timeout, tc.cfg.Prefix = time.Second, "tls"
			s, err := Open(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			_, err = s.List(context.Background(), store.Locks)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("list over TLS: %v", err)
				}
				return
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("list: %v, want ErrUnavailable", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A deadline is recognised however it comes back: from this side, or from
// the server, which got the request's deadline and reports it passing as
// code Unknown.
func TestDeadline(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("txn: %w", context.DeadlineExceeded), true},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded while waiting for connections to become ready"), true},
		{status.Error(codes.Unknown, "context deadline exceeded"), true},
		{status.Error(codes.Unavailable, "etcdserver: no leader"), false},
		{errors.New("etcdserver: permission denied"), false},
	} {
		if got := deadline(tc.err); got != tc.want {
			t.Errorf("deadline(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
