//go:build !lokt_slim

package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/audit"
	"github.com/lokt-dev/lokt/internal/etcdstore"
	"github.com/lokt-dev/lokt/store"
)

// etcdAuditObserver is the Factory's default EtcdObserver: every event goes
// to the cluster's one audit trail, shared by all hosts. A failed write is a
// warning on stderr (once per process), never a failed lock operation.
func etcdAuditObserver(st store.Store, io *IOStreams) func(lokt.Event) {
	s, ok := st.(*etcdstore.Store)
	if !ok {
		return nil
	}
	var once sync.Once
	return func(e lokt.Event) {
		rec := audit.FromEvent(e)
		line, err := rec.Marshal()
		if err == nil {
			err = s.AppendAudit(context.Background(), trimNewline(line))
		}
		if err != nil {
			once.Do(func() {
				fmt.Fprintf(io.ErrOut, "lokt: warning: audit trail not written: %v; the lock operation itself is not affected\n", err)
			})
		}
	}
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// runAuditEtcd is `lokt audit` on the etcd backend: the shared trail in
// revision order, and with --tail the events that follow, from a watch.
func runAuditEtcd(ctx context.Context, f *Factory, opts *AuditOptions) error {
	sp, err := f.etcdSpec()
	if err != nil {
		return err
	}
	s, err := f.etcdStore(sp)
	if err != nil {
		return err
	}
	out := f.IO.Out
	var buf *bufio.Writer
	if !opts.Tail {
		buf = bufio.NewWriterSize(out, 64<<10)
		out = buf
	}
	p := &auditPrinter{w: out, json: opts.JSON}
	bad := 0
	keep := func(raw []byte) error {
		var rec audit.Record
		if json.Unmarshal(raw, &rec) != nil || rec.Event == "" {
			bad++
			return nil
		}
		if !opts.Since.IsZero() && rec.TS.Before(opts.Since) {
			return nil
		}
		if opts.Name != "" && rec.Name != opts.Name {
			return nil
		}
		return p.print(raw, &rec)
	}
	if opts.Tail {
		var rev int64
		if !opts.Since.IsZero() {
			if rev, err = s.ScanAudit(ctx, keep); err != nil {
				return err
			}
		}
		ready := func() {
			fmt.Fprintf(f.IO.ErrOut, "following the audit trail in %s (Ctrl-C to stop)\n", s.Location())
			if opts.ready != nil {
				opts.ready()
			}
		}
		err = s.FollowAudit(ctx, rev, ready, keep)
	} else {
		_, err = s.ScanAudit(ctx, keep)
		if err == nil && p.rows == 0 && !opts.JSON {
			fmt.Fprintln(out, "no matching audit events")
		}
		if ferr := buf.Flush(); err == nil {
			err = ferr
		}
	}
	if bad > 0 {
		fmt.Fprintf(f.IO.ErrOut, "lokt: skipped %d unreadable event(s) in the audit trail (not lokt's JSON)\n", bad)
	}
	return err
}
