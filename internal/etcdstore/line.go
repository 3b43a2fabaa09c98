package etcdstore

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lokt-dev/lokt/store"
)

// Line puts the caller in the waiting line for k the way etcd's own mutex
// does: a key under P/line/NAME/ on a lease of the caller's own, whose
// creation revision is its place. Each waiter watches only the waiter just
// ahead of it (the greatest creation revision below its own) and moves up
// when that key is deleted, so a release wakes one waiter. A waiter that
// leaves revokes its lease; one that dies leaves when its lease expires.
func (s *Store) Line(k store.Key) (<-chan struct{}, func(), error) {
	ctx, stop := context.WithCancel(context.Background())
	rctx, cancel := s.request(ctx)
	g, err := s.cli.Grant(rctx, ttlSeconds(s.leaseTTL))
	cancel()
	if err != nil {
		stop()
		return nil, nil, s.unavailable("join the line for "+k.Name, err)
	}
	dir := s.prefix + "/line/" + k.Name + "/"
	me := fmt.Sprintf("%s%016x", dir, int64(g.ID))
	rctx, cancel = s.request(ctx)
	res, err := s.cli.Put(rctx, me, "", clientv3.WithLease(g.ID))
	cancel()
	if err == nil {
		var ka <-chan *clientv3.LeaseKeepAliveResponse
		if ka, err = s.cli.KeepAlive(ctx, g.ID); err == nil {
			go func() {
				for range ka { // the client wants its answers read
				}
			}()
		}
	}
	if err != nil {
		stop()
		s.revoke(g.ID)
		return nil, nil, s.unavailable("join the line for "+k.Name, err)
	}
	myRev := res.Header.Revision
	first := make(chan struct{})
	go s.waitTurn(ctx, dir, myRev, first)
	leave := func() {
		stop()
		s.revoke(g.ID)
	}
	return first, leave, nil
}

// waitTurn closes first once no waiter created before myRev remains. On
// errors it gives up silently: the engine's waiters retry on their own
// timer, so the line is a courtesy, never what decides who holds a lock.
func (s *Store) waitTurn(ctx context.Context, dir string, myRev int64, first chan struct{}) {
	for {
		rctx, cancel := s.request(ctx)
		res, err := s.cli.Get(rctx, dir, clientv3.WithPrefix(), clientv3.WithMaxCreateRev(myRev-1),
			clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(1))
		cancel()
		if err != nil {
			return
		}
		if len(res.Kvs) == 0 {
			close(first)
			return
		}
		ahead := res.Kvs[0].Key
		wctx, unwatch := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := s.cli.Watch(wctx, string(ahead), clientv3.WithRev(res.Header.Revision+1), clientv3.WithFilterPut())
		gone := false
		for w := range wch {
			if w.Err() != nil {
				break
			}
			if len(w.Events) > 0 {
				gone = true
				break
			}
		}
		unwatch()
		if !gone || ctx.Err() != nil {
			return
		}
	}
}
