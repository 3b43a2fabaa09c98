package etcdstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The audit trail's retention: whatever is older than AuditMaxAge, and the
// oldest beyond AuditMaxEvents, is deleted. Pruning runs on about one write
// in auditPruneEvery, so the trail may briefly exceed the count by a few.
const (
	AuditMaxAge     = 30 * 24 * time.Hour
	AuditMaxEvents  = 10000
	auditPruneEvery = 16
)

// The audit trail is one key per event under P/audit/, named by the
// writer's clock (so that age-based pruning is one range delete) plus a
// random suffix; readers order events by revision, the cluster's own order,
// which no host's clock can disturb.
func (s *Store) auditDir() string { return s.prefix + "/audit/" }

func (s *Store) auditKey(t time.Time) string {
	return fmt.Sprintf("%s%016x-%08x", s.auditDir(), t.UnixNano(), rand.Uint32()) //nolint:gosec // uniqueness, not security
}

// AppendAudit adds one event (a JSON line without its newline) to the
// shared trail, pruning now and then.
func (s *Store) AppendAudit(ctx context.Context, line []byte) error {
	rctx, cancel := s.request(ctx)
	defer cancel()
	if _, err := s.cli.Put(rctx, s.auditKey(time.Now()), string(line)); err != nil {
		return s.fail(ctx, "append to the audit trail", err)
	}
	if rand.N(auditPruneEvery) == 0 { //nolint:gosec // sampling, not security
		return s.PruneAudit(rctx, time.Now(), AuditMaxAge, AuditMaxEvents)
	}
	return nil
}

// PruneAudit deletes events older than maxAge (by their writer's clock) and
// the oldest beyond maxEvents.
func (s *Store) PruneAudit(ctx context.Context, now time.Time, maxAge time.Duration, maxEvents int) error {
	dir := s.auditDir()
	if _, err := s.cli.Delete(ctx, dir, clientv3.WithRange(s.auditKey(now.Add(-maxAge))[:len(dir)+16])); err != nil {
		return s.fail(ctx, "prune the audit trail", err)
	}
	res, err := s.cli.Get(ctx, dir, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return s.fail(ctx, "prune the audit trail", err)
	}
	extra := res.Count - int64(maxEvents)
	if extra <= 0 {
		return nil
	}
	old, err := s.cli.Get(ctx, dir, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(extra),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil || len(old.Kvs) == 0 {
		return err
	}
	last := string(old.Kvs[len(old.Kvs)-1].Key)
	if _, err := s.cli.Delete(ctx, dir, clientv3.WithRange(last+"\x00")); err != nil {
		return s.fail(ctx, "prune the audit trail", err)
	}
	return nil
}

// ScanAudit calls fn with every event of the trail in revision order and
// returns the revision it read at.
func (s *Store) ScanAudit(ctx context.Context, fn func(line []byte) error) (int64, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	res, err := s.cli.Get(rctx, s.auditDir(), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortAscend))
	if err != nil {
		return 0, s.fail(ctx, "read the audit trail", err)
	}
	for _, kv := range res.Kvs {
		if err := fn(kv.Value); err != nil {
			return 0, err
		}
	}
	return res.Header.Revision, nil
}

// FollowAudit calls fn with every event added to the trail after revision
// rev (0: after now), in order, until ctx ends. ready is called once the
// watch is in place.
func (s *Store) FollowAudit(ctx context.Context, rev int64, ready func(), fn func(line []byte) error) error {
	if rev == 0 {
		rctx, cancel := s.request(ctx)
		res, err := s.cli.Get(rctx, s.auditDir(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err != nil {
			return s.fail(ctx, "follow the audit trail", err)
		}
		rev = res.Header.Revision
	}
	wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.auditDir(), clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithFilterDelete())
	if ready != nil {
		ready()
	}
	for w := range wch {
		if err := w.Err(); err != nil {
			return s.fail(ctx, "follow the audit trail", err)
		}
		for _, ev := range w.Events {
			if err := fn(ev.Kv.Value); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return s.unavailable("follow the audit trail", fmt.Errorf("the watch ended"))
}
