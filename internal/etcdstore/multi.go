package etcdstore

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lokt-dev/lokt/store"
)

// Records with several holders (slots, shared holders) and waiters in line
// (protocol version 2) live at P/locks/NAME like any other record, but on
// no lease: each holder has a lease of its own (P/holders/NAME/ID), and a
// key can be on one lease only, so tying the record to any one of them
// would remove every holder's entry when that one ended. The engine judges
// each entry by its own evidence key instead, and removes the record
// itself when the last holder leaves (or is found dead) and nobody waits.

var (
	_ store.MultiHolder   = (*Store)(nil)
	_ store.ChangeWatcher = (*Store)(nil)
	_ store.Leaser        = (*Store)(nil)
)

// MultiHolder implements store.MultiHolder: a version 2 record is one key,
// changed by the same compare-and-swap as any other.
func (s *Store) MultiHolder() {}

// WatchChanges implements store.ChangeWatcher: every put or removal (by a
// delete or a lease's end) of one of keys, or of any record of a namespace
// for a key with an empty Name, until ctx ends. As on files, a watcher of
// locks also sees waiters of plain exclusive locks come and go (their
// descriptions under P/waiting/, announce.go).
func (s *Store) WatchChanges(ctx context.Context, keys ...store.Key) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	wctx := clientv3.WithRequireLeader(ctx)
	var watches []clientv3.WatchChan
	for _, k := range keys {
		if k.Name == "" {
			watches = append(watches, s.cli.Watch(wctx, s.prefix+"/"+string(k.NS)+"/", clientv3.WithPrefix()))
		} else {
			watches = append(watches, s.cli.Watch(wctx, s.key(k)))
		}
		switch {
		case k.NS != store.Locks:
		case k.Name == "":
			watches = append(watches, s.cli.Watch(wctx, s.prefix+"/waiting/", clientv3.WithPrefix()))
		default:
			watches = append(watches, s.cli.Watch(wctx, s.waitingDir(k), clientv3.WithPrefix()))
		}
	}
	for _, wch := range watches {
		go func() {
			for resp := range wch {
				if len(resp.Events) == 0 && resp.Err() == nil {
					continue
				}
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}()
	}
	return out, nil
}
