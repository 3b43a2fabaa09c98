package etcdstore

import (
	"context"
	"os"
	"sync"

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
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Keep grants a lease of the store's lease TTL, puts the evidence key on
// it and keeps it alive from a background goroutine until Close or loss.
func (s *Store) Keep(ctx context.Context, k store.Key, id string) (store.Kept, error) {
	op := "keep holder evidence for " + k.Name
	rctx, cancel := s.request(ctx)
	g, err := s.cli.Grant(rctx, ttlSeconds(s.leaseTTL))
	cancel()
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	rctx, cancel = s.request(ctx)
	_, err = s.cli.Put(rctx, s.holderKey(k, id), "", clientv3.WithLease(g.ID))
	cancel()
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
	kp := &Kept{s: s, lease: g.ID, cancel: stop, done: make(chan struct{})}
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

// Forget removes the evidence key; its lease, if still alive, is the
// holder's to revoke.
func (s *Store) Forget(ctx context.Context, k store.Key, id string) error {
	rctx, cancel := s.request(ctx)
	defer cancel()
	if _, err := s.cli.Delete(rctx, s.holderKey(k, id)); err != nil {
		return s.fail(ctx, "forget holder of "+k.Name, err)
	}
	return nil
}

// Files is nil: a lease is not inherited through descriptors.
func (k *Kept) Files() []*os.File { return nil }

// Done is closed once the lease can no longer be kept alive.
func (k *Kept) Done() <-chan struct{} { return k.done }

// Lease is the lease id, for messages and tests.
func (k *Kept) Lease() int64 { return int64(k.lease) }

// Close stops the keep-alive and revokes the lease, which removes the
// evidence and any record still attached to it.
func (k *Kept) Close() error {
	var err error
	k.once.Do(func() {
		k.cancel()
		ctx, cancel := k.s.request(context.Background())
		defer cancel()
		if _, rerr := k.s.cli.Revoke(ctx, k.lease); rerr != nil {
			err = k.s.unavailable("revoke holder lease", rerr)
		}
	})
	return err
}
