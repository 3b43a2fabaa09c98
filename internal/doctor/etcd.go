//go:build !lokt_slim

package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/etcdstore"
	"github.com/lokt-dev/lokt/internal/version"
	"github.com/lokt-dev/lokt/store"
)

// The checks of a root on etcd.
const (
	CheckEndpoints = "endpoints"
	CheckQuorum    = "quorum"
	CheckSecurity  = "tls-auth"
	CheckLease     = "lease-probe"
	CheckLeaseTTL  = "lease-facts"
)

// EtcdOptions configure RunEtcd.
type EtcdOptions struct {
	Location lokt.Location
	Store    *etcdstore.Store
	TLS      bool
	User     string
	LeaseTTL time.Duration
}

// RunEtcd checks a root on etcd: every endpoint (reachable, server
// version, round trip), quorum (a linearizable read), TLS and auth, a lease
// grant and revoke, what users must know about lease TTLs, and the records
// under the prefix. Like Run it only reads, except for the probe lease,
// which holds no key and is revoked at once.
func RunEtcd(opts EtcdOptions) *Report {
	rep := &Report{ProtocolVersion: version.Protocol, Checks: []Check{}}
	d := &doctor{rep: rep, loc: opts.Location, opts: Options{Now: time.Now, Getenv: func(string) string { return "" }}}
	rep.Root, rep.RootSource, rep.RootReason = opts.Location.Dir, opts.Location.Source, opts.Location.Reason
	d.add(CheckRoot, ok("%s (chosen by %s)", opts.Location.Dir, opts.Location.Source))
	s := opts.Store
	cli := s.Client()
	d.add(CheckEndpoints, etcdEndpoints(cli, s.Timeout()))
	quorum := etcdQuorum(s)
	d.add(CheckQuorum, quorum)
	d.add(CheckSecurity, etcdSecurity(opts, quorum))
	d.add(CheckLease, etcdLease(cli, s.Timeout()))
	d.add(CheckLeaseTTL, ok("holders and waiters are on leases of %s (LOKT_ETCD_LEASE_TTL); etcd grants at least 2s, "+
		"expires a lease up to about 0.5s late, and resets every lease to its full TTL on a leader change: "+
		"a TTL is a lower bound on how long a dead holder blocks others, never an upper one", opts.LeaseTTL))
	if quorum.status != OK {
		why := fail("not checked: the cluster could not be read", "fix the quorum check first")
		d.add(CheckUnsupported, why)
		d.add(CheckCorrupt, why)
		d.add(CheckStale, why)
		return rep
	}
	d.loadStore(s)
	d.checkRecordsRead()
	return rep
}

func etcdEndpoints(cli *clientv3.Client, timeout time.Duration) verdict {
	var okEps, bad []string
	for _, ep := range cli.Endpoints() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		st, err := cli.Status(ctx, ep) // the first call also connects
		start := time.Now()
		if err == nil {
			st, err = cli.Status(ctx, ep)
		}
		rtt := time.Since(start)
		cancel()
		host := strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://")
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", host, err))
			continue
		}
		role := "follower"
		if st.Leader == st.Header.MemberId {
			role = "leader"
		}
		okEps = append(okEps, fmt.Sprintf("%s etcd %s %s, round trip %s", host, st.Version, role, rtt.Round(10*time.Microsecond)))
	}
	switch {
	case len(bad) == 0:
		return ok("%s", strings.Join(okEps, "; "))
	case len(okEps) == 0:
		return fail("no endpoint answers: "+strings.Join(bad, "; "), "check the addresses in LOKT_BACKEND, that etcd runs there, and the network between")
	}
	return warn(fmt.Sprintf("%d of %d endpoints do not answer: %s (answering: %s)", len(bad), len(bad)+len(okEps), strings.Join(bad, "; "), strings.Join(okEps, "; ")),
		"a cluster keeps working while a majority answers; bring the others back before losing another one")
}

func etcdQuorum(s *etcdstore.Store) verdict {
	start := time.Now()
	// List is a linearizable read: it needs a leader and a majority.
	names, err := s.List(context.Background(), store.Locks)
	if err != nil {
		return fail(err.Error(), "a cluster needs a majority of its members up and talking to each other; check them with etcdctl endpoint health")
	}
	return ok("a linearizable read under /%s took %s (%d lock record(s))", s.Prefix(), time.Since(start).Round(10*time.Microsecond), len(names))
}

func etcdSecurity(opts EtcdOptions, quorum verdict) verdict {
	tls := "no TLS (plain http)"
	if opts.TLS {
		tls = "TLS"
	}
	auth := "no user"
	if opts.User != "" {
		auth = "user " + opts.User
	}
	msg := tls + ", " + auth
	if quorum.status != OK && (strings.Contains(quorum.message, "permission denied") || strings.Contains(quorum.message, "authentication")) {
		return fail(msg+": the cluster refused the credentials", "check LOKT_ETCD_USER/LOKT_ETCD_PASSWORD and that the user's role may read and write under the prefix")
	}
	if !opts.TLS {
		return warn(msg, "on a network anyone can reach, serve etcd over TLS and set LOKT_ETCD_CACERT (and a client certificate or a user)")
	}
	return ok("%s", msg)
}

func etcdLease(cli *clientv3.Client, timeout time.Duration) verdict {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	g, err := cli.Grant(ctx, 5)
	if err != nil {
		return fail("cannot grant a lease: "+err.Error(), "guard and waiting need leases; check the cluster's health and the user's permissions")
	}
	granted := time.Since(start)
	if _, err := cli.Revoke(ctx, g.ID); err != nil {
		return fail("granted a lease but cannot revoke it: "+err.Error(), "check the cluster's health")
	}
	return ok("granted a 5s lease (etcd gave %ds) in %s and revoked it in %s", g.TTL, granted.Round(10*time.Microsecond), (time.Since(start) - granted).Round(10*time.Microsecond))
}

// loadStore is load for a root on a store: the records through the
// engine's read-only calls.
func (d *doctor) loadStore(s store.Store) {
	root, err := lokt.Open(d.loc.Dir, lokt.WithStore(s))
	if err != nil {
		d.recs.err = err
		return
	}
	ctx := context.Background()
	d.loadLocks(ctx, root)
	names, err := root.Names(ctx, store.Freezes)
	if err != nil {
		d.recs.err = err
		return
	}
	for _, name := range names {
		_, err := root.GetFreeze(ctx, name)
		var corrupt *lokt.CorruptError
		var newer *lokt.UnsupportedVersionError
		switch {
		case err == nil, errors.Is(err, lokt.ErrNotFound):
		case errors.As(err, &newer):
			d.recs.newFreezes = append(d.recs.newFreezes, newer.Error())
		case errors.As(err, &corrupt):
			d.recs.badFreezes = append(d.recs.badFreezes, name)
		default:
			d.recs.unreadable = append(d.recs.unreadable, err.Error())
		}
	}
}

// checkRecordsRead adds the record checks once loadStore has run.
func (d *doctor) checkRecordsRead() {
	d.addRecordChecks("check the cluster's health and the user's permissions")
}
