//go:build unix

package e2e

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdHolderLease is the lease that keeps the holder evidence of name's
// lock alive (etcd's own view, under prefix).
func etcdHolderLease(t *testing.T, cli *clientv3.Client, prefix, name string) clientv3.LeaseID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.Get(ctx, prefix+"/holders/"+name+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Kvs) != 1 || res.Kvs[0].Lease == 0 {
		t.Fatalf("holder evidence of %s: %v, want one key on a lease", name, res.Kvs)
	}
	return clientv3.LeaseID(res.Kvs[0].Lease)
}

// leaseAlive says whether etcd still has the lease (it never comes back
// once gone, so "gone now" proves nothing about before, and "alive now"
// proves it was alive at every earlier moment).
func leaseAlive(t *testing.T, cli *clientv3.Client, id clientv3.LeaseID) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.TimeToLive(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return res.TTL > 0
}
