//go:build !lokt_slim

package cli

import (
	"cmp"
	"fmt"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/backend"
	"github.com/lokt-dev/lokt/internal/doctor"
	"github.com/lokt-dev/lokt/internal/etcdstore"
)

// The etcd backend's construction, left out of the slim build (which hands
// every non-file backend over to lokt-full before it gets here).

// etcdStore connects to the etcd backend (once per process).
func (f *Factory) etcdStore(sp *backend.Spec) (*etcdstore.Store, error) {
	if s, ok := f.etcd.(*etcdstore.Store); ok {
		return s, nil
	}
	s, err := sp.Open(f.Getenv)
	if err != nil {
		return nil, &exitError{code: ExitError, err: err}
	}
	f.etcd = s
	return s, nil
}

// etcdRoot opens a root on the etcd backend. It always exists; the
// file-only parts (LOKT_REQUIRE_LOCAL_FS, the audit.log writer) do not apply.
func (f *Factory) etcdRoot(loc lokt.Location) (*lokt.Root, error) {
	s, err := f.etcdStore(f.spec)
	if err != nil {
		return nil, err
	}
	opts := []lokt.Option{lokt.WithStore(s)}
	if f.EtcdObserver != nil {
		if obs := f.EtcdObserver(s, f.IO); obs != nil {
			opts = append(opts, lokt.WithObserver(obs))
		}
	}
	r, err := lokt.Open(loc.Dir, opts...)
	if err != nil {
		return nil, err
	}
	f.root = r
	return r, nil
}

// etcdDoctorOptions is what doctor needs to check the etcd backend.
func (f *Factory) etcdDoctorOptions() (doctor.EtcdOptions, error) {
	loc, err := f.Location()
	if err != nil {
		return doctor.EtcdOptions{}, err
	}
	cfg, err := f.spec.Config(f.Getenv)
	if err != nil {
		return doctor.EtcdOptions{}, &exitError{code: ExitError, err: fmt.Errorf("etcd backend %s: %w", f.spec, err)}
	}
	s, err := f.etcdStore(f.spec)
	if err != nil {
		return doctor.EtcdOptions{}, err
	}
	return doctor.EtcdOptions{Location: loc, Store: s, TLS: cfg.TLS != nil, User: cfg.Username, LeaseTTL: cmp.Or(cfg.LeaseTTL, etcdstore.DefaultLeaseTTL)}, nil
}

// etcdDoctor checks the etcd backend.
func etcdDoctor(f *Factory) (*doctor.Report, error) {
	eo, err := f.etcdDoctorOptions()
	if err != nil {
		return nil, err
	}
	return doctor.RunEtcd(eo), nil
}
