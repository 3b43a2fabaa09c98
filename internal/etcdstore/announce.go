package etcdstore

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lokt-dev/lokt/store"
)

var _ store.Announcer = (*Store)(nil)

// waitingDir is the prefix of the descriptions of k's waiters,
// P/waiting/NAME/, each WAITID with the waiter's JSON as value.
func (s *Store) waitingDir(k store.Key) string {
	return s.prefix + "/waiting/" + k.Name + "/"
}

// Announce implements store.Announcer: a key P/waiting/NAME/WAITID on a
// lease of the waiter's own, kept alive while it waits. It is written in
// the background, so a waiter starts waiting without paying round trips
// for it (status may miss a waiter for those few milliseconds). withdraw
// revokes the lease; a waiter that dies leaves when its lease expires
// (readers on its host drop it at once: its process is gone).
// (Not the key of Line: a waiter leaves that line when it reaches the
// head, and is still waiting there.)
func (s *Store) Announce(k store.Key, id string, info []byte) (func(), error) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	var lease clientv3.LeaseID
	go func() {
		defer close(done)
		rctx, cancel := s.request(ctx)
		g, err := s.cli.Grant(rctx, ttlSeconds(s.leaseTTL))
		cancel()
		if err != nil {
			return
		}
		lease = g.ID
		rctx, cancel = s.request(ctx)
		_, err = s.cli.Put(rctx, s.waitingDir(k)+id, string(info), clientv3.WithLease(g.ID))
		cancel()
		if err != nil {
			return
		}
		ka, err := s.cli.KeepAlive(ctx, g.ID)
		if err != nil {
			return
		}
		for range ka { // until withdraw (or the lease is lost)
		}
	}()
	return sync.OnceFunc(func() {
		// The revoke goes out in the background, so an acquirer does not
		// wait a round trip for it; Close waits for it before the client
		// goes away.
		stop()
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			<-done
			if lease != 0 {
				s.revoke(lease)
			}
		}()
	}), nil
}

// Announced implements store.Announcer: the waiters' descriptions in the
// order their keys were created (etcd's revision order).
func (s *Store) Announced(ctx context.Context, k store.Key) ([][]byte, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	res, err := s.cli.Get(rctx, s.waitingDir(k), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return nil, s.fail(ctx, "list the waiters of "+k.Name, err)
	}
	out := make([][]byte, 0, len(res.Kvs))
	for _, kv := range res.Kvs {
		out = append(out, kv.Value)
	}
	return out, nil
}
