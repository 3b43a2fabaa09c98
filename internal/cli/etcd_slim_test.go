//go:build lokt_slim

package cli

import (
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lokt-dev/lokt/internal/backend"
)

func putEtcdRecord(ts *testscript.TestScript, _ *backend.Spec, _, _ string) {
	ts.Fatalf("the slim build has no etcd client")
}

func getEtcdRecord(ts *testscript.TestScript, _ *backend.Spec, _ string) string {
	ts.Fatalf("the slim build has no etcd client")
	return ""
}
