// Package etcdstore keeps a lokt root in etcd: one key per record under a
// prefix, compare-and-swap by revision, records attached to leases so that
// a holder's lock ends when its lease does, holder evidence as leases kept
// alive, and a waiting line ordered by revision.
//
// Layout under the prefix P (names never contain "/"):
//
//	P/locks/NAME          lock record (the engine's JSON)
//	P/freezes/NAME        freeze record, on a lease of the freeze's TTL
//	P/seq/NAME            the name's sequence: bumped by every Update of
//	                      NAME, it makes a lock and its freeze one critical
//	                      section and carries the fencing-token counter
//	P/holders/NAME/ID     holder evidence of acquisition ID, on its lease
//	P/line/NAME/LEASE     a waiter, on its own lease
//	P/waiting/NAME/ID     what waiter ID says about itself, on its own
//	                      lease, while it waits (announce.go)
//	P/audit/...           the shared audit trail (audit.go)
package etcdstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lokt-dev/lokt/store"
)

// Defaults for Config's zero values.
const (
	// DefaultTimeout bounds connecting and every single request, so an
	// unreachable or quorum-less cluster gives an error instead of a hang.
	DefaultTimeout = 5 * time.Second
	// DefaultLeaseTTL is the lease of holder evidence and waiters: how long
	// a holder that vanished (host down, partitioned, SIGKILLed far away)
	// keeps its lock at least. etcd may grant more and reset it on a leader
	// change, so this is a lower bound.
	DefaultLeaseTTL = 10 * time.Second
	// DefaultRecordGrace is how long after its TTL a record with one stays
	// in etcd before its lease removes it: meanwhile it shows as expired
	// (as a file would) and any acquirer may break it.
	DefaultRecordGrace = time.Minute
	// DefaultPrefix is where records live when the backend URL names none.
	DefaultPrefix = "lokt"
)

// Config says where the cluster is and how to talk to it.
type Config struct {
	Endpoints []string // HOST:PORT
	Prefix    string   // key prefix, without leading or trailing "/"
	TLS       *tls.Config
	Username  string
	Password  string
	Timeout   time.Duration // dial and per-request bound; DefaultTimeout if 0
	LeaseTTL  time.Duration // DefaultLeaseTTL if 0
	// RecordGrace is DefaultRecordGrace if 0; negative means none.
	RecordGrace time.Duration
}

// Store is a lokt root in etcd. It implements store.Store, store.Keeper and
// store.Queue.
type Store struct {
	cli      *clientv3.Client
	prefix   string
	where    string
	timeout  time.Duration
	leaseTTL time.Duration
	grace    time.Duration

	conn       connNote // why requests last found no connection
	tls        bool     // the client speaks TLS
	clientCert bool     // and presents a certificate

	mu     sync.Mutex
	leases map[string]clientv3.LeaseID // evidence key -> lease, of this process's Keeps

	bg sync.WaitGroup // background requests Close waits for (withdrawn waiters)
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Keeper = (*Store)(nil)
	_ store.Leaser = (*Store)(nil)
	_ store.Queue  = (*Store)(nil)
)

// Open makes a client for cfg. It does not wait for the cluster (except to
// log in when a user name is set), so it is cheap; the first request says
// whether the cluster is there.
func Open(cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd backend: no endpoints")
	}
	s := &Store{
		prefix:   strings.Trim(cmp.Or(cfg.Prefix, DefaultPrefix), "/"),
		timeout:  cmp.Or(cfg.Timeout, DefaultTimeout),
		leaseTTL: cmp.Or(cfg.LeaseTTL, DefaultLeaseTTL),
		grace:    max(cmp.Or(cfg.RecordGrace, DefaultRecordGrace), 0),
		leases:   map[string]clientv3.LeaseID{},
		tls:      cfg.TLS != nil,
	}
	s.clientCert = s.tls && (len(cfg.TLS.Certificates) > 0 || cfg.TLS.GetClientCertificate != nil)
	scheme := "http://"
	if cfg.TLS != nil {
		scheme = "https://"
	}
	eps := make([]string, len(cfg.Endpoints))
	for i, e := range cfg.Endpoints {
		eps[i] = scheme + e
	}
	s.where = "etcd " + strings.Join(cfg.Endpoints, ",") + " (prefix /" + s.prefix + ")"
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: s.timeout,
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		// The client logs retries and reconnects at warn level to stderr;
		// lokt reports failures itself, once, as errors.
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(s.conn.intercept)},
	})
	if err != nil {
		return nil, s.unavailable("connect", err)
	}
	s.cli = cli
	return s, nil
}

// Close ends the client's connections. Leases this process keeps alive
// stop being renewed (they then expire by themselves).
func (s *Store) Close() error {
	s.bg.Wait()
	return s.cli.Close()
}

// Client is the underlying client, for doctor and the audit trail.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix is the key prefix, without slashes around it.
func (s *Store) Prefix() string { return s.prefix }

// Timeout is the per-request bound.
func (s *Store) Timeout() time.Duration { return s.timeout }

// Location names the cluster and prefix, for messages.
func (s *Store) Location() string { return s.where }

func (s *Store) key(k store.Key) string { return s.prefix + "/" + string(k.NS) + "/" + k.Name }
func (s *Store) seqKey(name string) string {
	return s.prefix + "/seq/" + name
}

// request bounds one request by the store's timeout as well as ctx.
func (s *Store) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// unavailable wraps a client error. The caller's own cancellation or
// deadline passes through unwrapped: that is not the cluster's fault.
func (s *Store) unavailable(op string, err error) error {
	return &store.UnavailableError{Where: s.where, Op: op, Err: s.cause(err)}
}

func (s *Store) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return s.unavailable(op, err)
}

// deadline says whether err is a request's deadline passing, on this side
// or, reported back as code Unknown, on the server's (which gets the
// request's deadline with it).
func deadline(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "DeadlineExceeded") ||
		strings.Contains(err.Error(), context.DeadlineExceeded.Error())
}

// cause makes the client's errors readable: a deadline means no answer,
// and when no connection could be made at all (connNote), the last dial
// failure says why: a TLS or network problem, not quorum.
func (s *Store) cause(err error) error {
	if !deadline(err) {
		return err
	}
	connErr := s.conn.last()
	if connErr == "" {
		return fmt.Errorf("no answer within %s (endpoints unreachable, or the cluster has no quorum)", s.timeout)
	}
	// Two failures do not name their cause: a server that wants TLS drops
	// a plain client before its first frame, and one that wants a client
	// certificate drops a TLS client without one right after the handshake.
	hint := ""
	dialed := !strings.Contains(connErr, "while dialing") // a TCP connection was made
	switch {
	case !s.tls && strings.Contains(connErr, "server preface"):
		hint = " (if the cluster serves TLS only, lokt must be given its CA certificate)"
	case s.tls && !s.clientCert && dialed && !strings.Contains(connErr, "x509"):
		hint = " (if the cluster requires client certificates, lokt must be given one and its key)"
	}
	return fmt.Errorf("no connection within %s: %s%s", s.timeout, connErr, hint)
}

// Update reads the record and the name's sequence in one snapshot, runs fn,
// and commits its Change in a transaction conditional on neither having
// changed since (by revision); on conflict it runs fn again. The commit
// always rewrites the sequence key, so any two Updates of one name, whatever
// their namespace, conflict: that is the name's critical section, and fn's
// Read of the name's other record sees state that cannot change before the
// commit without making the commit fail.
//
// A transient failure (leader change, a member going away) is retried
// within the store's timeout, which bounds the whole Update. A commit whose
// outcome is unknown is settled by the next snapshot: the sequence key
// carries a nonce of the attempt that wrote it.
func (s *Store) Update(ctx context.Context, k store.Key, fn func(cur []byte, seq uint64) (store.Change, error)) error {
	rec, sk := s.key(k), s.seqKey(k.Name)
	op := "update " + string(k.NS) + "/" + k.Name
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var pending string // nonce of a commit whose outcome is unknown
	var lastErr error
	retry := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if lastErr == nil || !errors.Is(err, context.DeadlineExceeded) {
			lastErr = err
		}
		if !transient(err) || octx.Err() != nil {
			return s.unavailable(op, lastErr)
		}
		select {
		case <-octx.Done():
			return s.unavailable(op, lastErr)
		case <-time.After(retryPause):
			return nil
		}
	}
	for {
		snap, err := s.cli.Txn(octx).Then(clientv3.OpGet(sk), clientv3.OpGet(rec)).Commit()
		if err != nil {
			if err := retry(err); err != nil {
				return err
			}
			continue
		}
		var seq uint64
		var seqRev, recRev int64
		var cur []byte
		if kvs := snap.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
			seqRev = kvs[0].ModRevision
			num, nonce, _ := strings.Cut(string(kvs[0].Value), " ")
			if pending != "" && nonce == pending {
				return nil // the commit that seemed to fail did apply
			}
			seq, err = strconv.ParseUint(num, 10, 64)
			if err != nil {
				return fmt.Errorf("%s: sequence key %s holds %q, not a number: %w", op, sk, kvs[0].Value, store.ErrUnsafe)
			}
		}
		pending = ""
		if kvs := snap.Responses[1].GetResponseRange().Kvs; len(kvs) == 1 {
			recRev, cur = kvs[0].ModRevision, kvs[0].Value
			if cur == nil {
				cur = []byte{} // present but empty: corrupt, not absent
			}
		}
		ch, err := fn(cur, seq)
		if err != nil {
			return err
		}
		if ch.Op == store.Keep && ch.Seq <= seq {
			return nil
		}
		nonce := newNonce()
		ops := []clientv3.Op{clientv3.OpPut(sk, strconv.FormatUint(max(seq, ch.Seq), 10)+" "+nonce)}
		var granted clientv3.LeaseID
		switch ch.Op {
		case store.Put:
			var opts []clientv3.OpOption
			switch kept, _ := ch.Kept.(*Kept); {
			case kept != nil:
				opts = append(opts, clientv3.WithLease(kept.lease))
			case ch.TTL > 0:
				g, err := s.cli.Grant(octx, ttlSeconds(ch.TTL+s.grace))
				if err != nil {
					if err := retry(err); err != nil {
						return err
					}
					continue
				}
				granted = g.ID
				opts = append(opts, clientv3.WithLease(g.ID))
			}
			ops = append(ops, clientv3.OpPut(rec, string(ch.Data), opts...))
		case store.Delete:
			ops = append(ops, clientv3.OpDelete(rec))
		}
		res, err := s.cli.Txn(octx).If(
			clientv3.Compare(clientv3.ModRevision(sk), "=", seqRev),
			clientv3.Compare(clientv3.ModRevision(rec), "=", recRev),
		).Then(ops...).Commit()
		if err != nil {
			// Unknown outcome: the next snapshot tells (by the nonce). A
			// granted lease is left to expire: the record may be on it.
			pending = nonce
			if err := retry(err); err != nil {
				return err
			}
			continue
		}
		if res.Succeeded {
			return nil
		}
		if granted != 0 {
			s.revoke(granted)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// retryPause spaces retries after a transient failure (a leader election
// takes a few hundred milliseconds).
const retryPause = 50 * time.Millisecond

// transient: etcd answers Unavailable for a leader change, no leader, and
// members it cannot reach; the client also gives up on an attempt with a
// deadline. Everything else (permission denied, bad auth) will not change
// by retrying.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable
	}
	return status.Code(err) == codes.Unavailable
}

func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ttlSeconds rounds up: a lease must never end before the record's TTL.
func ttlSeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}

func (s *Store) revoke(id clientv3.LeaseID) {
	ctx, cancel := s.request(context.Background())
	defer cancel()
	_, _ = s.cli.Revoke(ctx, id) // best effort: an unrevoked lease expires
}

// Read returns the record, or an error wrapping store.ErrNotExist.
func (s *Store) Read(ctx context.Context, k store.Key) ([]byte, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	res, err := s.cli.Get(rctx, s.key(k))
	if err != nil {
		return nil, s.fail(ctx, "read "+string(k.NS)+"/"+k.Name, err)
	}
	if len(res.Kvs) == 0 {
		return nil, fmt.Errorf("%s/%s: %w", k.NS, k.Name, store.ErrNotExist)
	}
	if res.Kvs[0].Value == nil {
		return []byte{}, nil
	}
	return res.Kvs[0].Value, nil
}

// List returns the names of the records in ns, sorted.
func (s *Store) List(ctx context.Context, ns store.Namespace) ([]string, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	dir := s.prefix + "/" + string(ns) + "/"
	res, err := s.cli.Get(rctx, dir, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, s.fail(ctx, "list "+string(ns), err)
	}
	names := make([]string, 0, len(res.Kvs))
	for _, kv := range res.Kvs {
		if n := strings.TrimPrefix(string(kv.Key), dir); n != "" && !strings.Contains(n, "/") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Watch signals the removal of any of keys (deletion or lease expiry) until
// ctx ends.
func (s *Store) Watch(ctx context.Context, keys ...store.Key) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	wctx := clientv3.WithRequireLeader(ctx)
	for _, k := range keys {
		wch := s.cli.Watch(wctx, s.key(k), clientv3.WithFilterPut())
		go func() {
			for resp := range wch {
				if len(resp.Events) == 0 {
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
