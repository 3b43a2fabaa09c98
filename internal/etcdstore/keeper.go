package etcdstore

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lokt-dev/lokt/store"
)

// Kept is holder evidence on etcd: a lease this process keeps alive, with
// the key P/holders/NAME/ID on it. A record written with store.Change.Kept
// set to it is attached to the same lease, so when the holder stops
// renewing (it died, its host went down, it was partitioned away for longer
// than the TTL) etcd removes the record by itself.
type Kept struct {
	s      *Store
	lease  clientv3.LeaseID
	key    string
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Keep grants a lease of the store's lease TTL, puts the evidence key on
// it and keeps it alive from a background goroutine until Close or loss.
func (s *Store) Keep(ctx context.Context, k store.Key, id string) (store.Kept, error) {
	op := "keep holder evidence for " + k.Name
	var g *clientv3.LeaseGrantResponse
	err := s.retrying(ctx, func(rctx context.Context) (err error) {
		g, err = s.cli.Grant(rctx, ttlSeconds(s.leaseTTL))
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	err = s.retrying(ctx, func(rctx context.Context) error {
		_, err := s.cli.Put(rctx, s.holderKey(k, id), "", clientv3.WithLease(g.ID))
		return err
	})
	if err != nil {
		s.revoke(g.ID)
		return nil, s.fail(ctx, op, err)
	}
	kctx, stop := context.WithCancel(context.Background())
	ka, err := s.cli.KeepAlive(kctx, g.ID)
	if err != nil {
		stop()
		s.revoke(g.ID)
		return nil, s.unavailable(op, err)
	}
	kp := &Kept{s: s, lease: g.ID, key: s.holderKey(k, id), cancel: stop, done: make(chan struct{})}
	s.mu.Lock()
	s.leases[kp.key] = g.ID
	s.mu.Unlock()
	go func() {
		// The client closes the channel when the lease can no longer be
		// renewed: it expired (no answer within the TTL), was revoked, or
		// kctx ended.
		for range ka {
		}
		close(kp.done)
	}()
	return kp, nil
}

// LeasesRecords marks the Store as a store.Leaser: a record put with
// Change.Kept is on the holder's lease (see Update).
func (s *Store) LeasesRecords() {}

func (s *Store) holderKey(k store.Key, id string) string {
	return s.prefix + "/holders/" + k.Name + "/" + id
}

// Alive reports whether the evidence key of acquisition id still exists,
// that is whether its lease is still kept alive by someone.
func (s *Store) Alive(ctx context.Context, k store.Key, id string) (bool, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	res, err := s.cli.Get(rctx, s.holderKey(k, id), clientv3.WithCountOnly())
	if err != nil {
		return false, s.fail(ctx, "check holder of "+k.Name, err)
	}
	return res.Count > 0, nil
}

// Forget removes the evidence of acquisition id and revokes its lease,
// taking any record still on it along: the record is gone for good, and a
// lease left alone would only expire later.
func (s *Store) Forget(ctx context.Context, k store.Key, id string) error {
	op := "forget holder of " + k.Name
	rctx, cancel := s.request(ctx)
	defer cancel()
	hk := s.holderKey(k, id)
	s.mu.Lock()
	lease, ok := s.leases[hk]
	delete(s.leases, hk)
	s.mu.Unlock()
	if !ok {
		res, err := s.cli.Get(rctx, hk)
		if err != nil {
			return s.fail(ctx, op, err)
		}
		if len(res.Kvs) == 0 {
			return nil
		}
		lease = clientv3.LeaseID(res.Kvs[0].Lease)
	}
	if _, err := s.cli.Delete(rctx, hk); err != nil {
		return s.fail(ctx, op, err)
	}
	if lease != 0 {
		if _, err := s.cli.Revoke(rctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return s.fail(ctx, op, err)
		}
	}
	return nil
}

// Files is nil: a lease is not inherited through descriptors.
func (k *Kept) Files() []*os.File { return nil }

// Done is closed once the lease can no longer be kept alive.
func (k *Kept) Done() <-chan struct{} { return k.done }

// Lease is the lease id, for messages and tests.
func (k *Kept) Lease() int64 { return int64(k.lease) }

// Close stops keeping the lease alive and removes the evidence key, so
// Alive says no from now on. The lease itself, and a record on it, are left
// for Forget after the record is released (a lease cannot be inherited by
// the holder's children: once the holder stops renewing, the record ends
// with the lease's TTL at the latest).
func (k *Kept) Close() error {
	var err error
	k.once.Do(func() {
		k.cancel()
		ctx, cancel := k.s.request(context.Background())
		defer cancel()
		if _, derr := k.s.cli.Delete(ctx, k.key); derr != nil {
			err = k.s.unavailable("drop holder evidence", derr)
		}
	})
	return err
}

// retrying runs a request that may be repeated (a second grant after a lost
// answer only leaves a lease that expires unused) in attempts of half the
// store's timeout, within the timeout: a request sent to a leader just
// killed fails or hangs, and the next attempt reaches the new one.
func (s *Store) retrying(ctx context.Context, do func(context.Context) error) error {
	octx, cancel := s.request(ctx)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(octx, s.timeout/2)
		err := do(actx)
		acancel()
		if err == nil || !transient(err) || octx.Err() != nil {
			return err
		}
		select {
		case <-octx.Done():
			return err
		case <-time.After(retryPause):
		}
	}
}
