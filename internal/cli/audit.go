package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/audit"
	"github.com/lokt-dev/lokt/internal/lockfile"
)

// AuditOptions are the parsed flags of `lokt audit`.
type AuditOptions struct {
	// Since drops events before it; zero keeps all.
	Since time.Time
	Name  string
	Tail  bool
	JSON  bool

	// ready, if set, is called once --tail is following (for tests).
	ready func()
}

func newCmdAudit(f *Factory, runF func(*AuditOptions) error) *cobra.Command {
	opts := &AuditOptions{}
	var since string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show or follow the audit log",
		Long: `Show the audit log of the lock root, oldest first, across rotated files:
one row per event with its time, event, lock name, who did it (owner@host,
pid) and details. --json prints the log's own JSON lines instead.

--since takes a duration (8h: the last eight hours) or an RFC 3339 time.
--tail keeps following new events, across rotations, until Ctrl-C or SIGTERM
ends it with exit 0; it shows earlier events only when --since is given.

Lines that cannot be read (torn by a crash, or not JSON) are skipped and
counted on stderr.`,
		Example: `  lokt audit --since 8h
  lokt audit --name deploy --json | jq 'select(.event == "force-break")'
  lokt audit --tail`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("since") {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				opts.Since = t
			}
			if opts.Name != "" {
				if err := lockfile.ValidateName(opts.Name); err != nil {
					return usageError("--name: %v", err)
				}
			}
			if runF != nil {
				return runF(opts)
			}
			ctx := cmd.Context()
			if opts.Tail {
				ctx, _ = interruptContext(ctx)
			}
			return runAudit(ctx, f, opts)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only events from the last D (e.g. 8h) or since an RFC 3339 time")
	cmd.Flags().StringVar(&opts.Name, "name", "", "only events about this lock or freeze NAME")
	cmd.Flags().BoolVar(&opts.Tail, "tail", false, "keep printing new events until interrupted")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the raw JSON lines")
	return cmd
}

// parseSince reads --since: a positive duration back from now, or an RFC
// 3339 time (fraction and zone optional in the usual forms).
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := parseDurationText(v); err == nil {
		if d <= 0 {
			return time.Time{}, usageError("--since %q must be positive: it reaches back from now", v)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageError("--since %q is neither a duration (8h, 30m) nor an RFC 3339 time (2006-01-02T15:04:05Z)", v)
}

func runAudit(ctx context.Context, f *Factory, opts *AuditOptions) error {
	loc, err := f.Location()
	if err != nil {
		return err
	}
	if _, err := os.Lstat(loc.Dir); errors.Is(err, fs.ErrNotExist) {
		if opts.Tail {
			return fmt.Errorf("lock root %s does not exist yet, so there is no audit log to follow; run this again after the first lock", loc.Dir)
		}
		if !opts.JSON {
			fmt.Fprintf(f.IO.Out, "no audit log yet: lock root %s does not exist\n", loc.Dir)
		}
		return nil
	}
	out := f.IO.Out
	var buf *bufio.Writer
	if !opts.Tail {
		// A whole log at once: buffer it; a followed one must show each line.
		buf = bufio.NewWriterSize(out, 64<<10)
		out = buf
	}
	p := &auditPrinter{w: out, json: opts.JSON}
	keep := func(raw []byte, rec *audit.Record) error {
		if !opts.Since.IsZero() && rec.TS.Before(opts.Since) {
			return nil
		}
		if opts.Name != "" && rec.Name != opts.Name {
			return nil
		}
		return p.print(raw, rec)
	}
	var st audit.Stats
	if opts.Tail {
		fo := audit.FollowOptions{
			FromStart: !opts.Since.IsZero(),
			Ready: func() {
				fmt.Fprintf(f.IO.ErrOut, "following %s (Ctrl-C to stop)\n", filepath.Join(loc.Dir, audit.FileName))
				if opts.ready != nil {
					opts.ready()
				}
			},
		}
		st, err = audit.Follow(ctx, loc.Dir, fo, keep)
		if ctx.Err() != nil {
			err = nil // interrupted: the normal end of following
		}
	} else {
		st, err = audit.Scan(loc.Dir, keep)
		if err == nil && p.rows == 0 && !opts.JSON {
			fmt.Fprintln(out, "no matching audit events")
		}
		if ferr := buf.Flush(); err == nil {
			err = ferr
		}
	}
	if st.Bad > 0 {
		fmt.Fprintf(f.IO.ErrOut, "lokt: skipped %d unreadable line(s) in the audit log (torn by an interrupted write, or not JSON)\n", st.Bad)
	}
	return err
}

// auditPrinter renders records as raw JSON lines or as a table. The table
// has fixed column widths so that it can be streamed: a tabwriter would hold
// the whole log in memory to size its columns.
type auditPrinter struct {
	w    io.Writer
	json bool
	rows int
}

const auditRowFormat = "%-23s  %-13s  %-20s  %-24s  %7s  %s\n"

func (p *auditPrinter) print(raw []byte, rec *audit.Record) error {
	p.rows++
	if p.json {
		// One write per line, so a reader of a followed stream never sees
		// half of one. The three-index slice makes append copy, not
		// overwrite the reader's buffer.
		_, err := p.w.Write(append(raw[:len(raw):len(raw)], '\n'))
		return err
	}
	if p.rows == 1 {
		if _, err := fmt.Fprintf(p.w, auditRowFormat, "TIME", "EVENT", "NAME", "OWNER@HOST", "PID", "DETAILS"); err != nil {
			return err
		}
	}
	// The log is written by every user of the root: all of a record's text
	// is shown escaped (an audit record's name is not validated on read).
	row := sprintText(auditRowFormat, rec.TS.Local().Format("2006-01-02 15:04:05.000"), rec.Event, rec.Name,
		labelText(rec.Owner, rec.Host, rec.AgentID), fmt.Sprint(rec.PID), auditDetails(rec))
	_, err := io.WriteString(p.w, row)
	return err
}

// auditDetails says in a few words what the event-specific fields hold.
func auditDetails(rec *audit.Record) string {
	ref := rec.TS.Time
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, sprintText(format, args...)) }
	switch lokt.EventType(rec.Event) {
	case lokt.EventAcquire, lokt.EventRefresh, lokt.EventRenew:
		if rec.TTLSec != nil && *rec.TTLSec > 0 {
			add("ttl %s, until %s", shortDur(time.Duration(*rec.TTLSec)*time.Second), clockTime(rec.ExpiresAt, ref))
		} else {
			add("no ttl")
		}
		if rec.Token != 0 {
			add("token %d", rec.Token)
		}
		add("lock %s", shortID(rec.LockID))
		if rec.Reason != "" {
			add("%s", rec.Reason)
		}
	case lokt.EventRelease:
		add("lock %s", shortID(rec.LockID))
		if h := rec.Holder; h != nil && (h.PID != rec.PID || h.Host != rec.Host || h.Owner != rec.Owner) {
			add("held by %s", holderWords(h))
		}
	case lokt.EventDeny:
		if h := rec.Holder; h != nil {
			add("held by %s since %s", holderWords(h), clockTime(&h.AcquiredAt, ref))
			if h.ExpiresAt != nil {
				add("until %s", clockTime(h.ExpiresAt, ref))
			}
		}
		add("lock %s", shortID(rec.LockID))
	case lokt.EventStaleBreak, lokt.EventForceBreak, lokt.EventAutoPrune:
		switch {
		case rec.Holder != nil:
			add("broke %s's lock %s (%s)", holderWords(rec.Holder), shortID(rec.LockID), rec.Reason)
		case rec.FrozenBy != nil:
			add("removed the freeze by %s (%s)", labelText(rec.FrozenBy.Owner, rec.FrozenBy.Host, rec.FrozenBy.AgentID), rec.Reason)
		default:
			add("%s", rec.Reason)
		}
	case lokt.EventCorruptBreak:
		add("removed a corrupt lock file: %s", rec.Reason)
	case lokt.EventLost:
		add("lock %s lost", shortID(rec.LockID))
		if rec.Reason != "" {
			add("%s", rec.Reason)
		}
	case lokt.EventFreeze:
		add("until %s", clockTime(rec.ExpiresAt, ref))
		if rec.Reason != "" {
			add("reason: %s", rec.Reason)
		}
	case lokt.EventUnfreeze, lokt.EventFreezeDeny:
		if fb := rec.FrozenBy; fb != nil {
			add("frozen by %s until %s", labelText(fb.Owner, fb.Host, fb.AgentID), clockTime(&fb.ExpiresAt, ref))
		}
		if rec.Reason != "" {
			add("reason: %s", rec.Reason)
		}
	default:
		if rec.Reason != "" {
			add("%s", rec.Reason)
		}
	}
	switch rec.Mode {
	case lokt.ModeShared:
		add("shared")
	case lokt.ModeSlots:
		add("%d slots", rec.Slots)
	}
	return strings.Join(parts, ", ")
}

func holderWords(h *audit.Holder) string {
	s := labelText(h.Owner, h.Host, h.AgentID)
	if h.PID != 0 {
		s += fmt.Sprintf(" pid %d", h.PID)
	}
	return s
}

// clockTime shows a time of the same day as ref as 15:04:05, others with
// their date.
func clockTime(t *lockfile.Time, ref time.Time) string {
	if t == nil {
		return "-"
	}
	lt, lr := t.Local(), ref.Local()
	if lt.YearDay() == lr.YearDay() && lt.Year() == lr.Year() {
		return lt.Format("15:04:05")
	}
	return lt.Format("2006-01-02 15:04:05")
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	if id == "" {
		return "-"
	}
	return id
}
