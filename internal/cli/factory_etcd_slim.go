//go:build lokt_slim

package cli

import (
	"context"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/doctor"
	"github.com/lokt-dev/lokt/store"
)

// The slim build leaves the etcd client out; Main hands etcd invocations to
// lokt-full first (extend.go), so these are only reached if that failed.

var etcdAuditObserver func(store.Store, *IOStreams) func(lokt.Event)

func (f *Factory) etcdRoot(lokt.Location) (*lokt.Root, error) {
	return nil, errLeftOut("the etcd backend")
}

func etcdDoctor(*Factory) (*doctor.Report, error) { return nil, errLeftOut("the etcd backend") }

func runAuditEtcd(context.Context, *Factory, *AuditOptions) error {
	return errLeftOut("the etcd backend")
}
