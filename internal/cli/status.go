package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/store"
)

// StatusOptions are the parsed flags of `lokt status`.
type StatusOptions struct {
	Name         string
	JSON         bool
	PruneExpired bool
	Watch        bool
}

func newCmdStatus(f *Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{}
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "List locks and freezes with their state",
		Long: `List every lock (or just NAME) with its holder, age, time left and state:
live (held), expired (TTL passed), dead (holder process gone), corrupt, or
unsupported (written by a newer lokt). Active freezes follow.
--prune-expired first removes every stale lock and expired freeze.
Names held with --slots or --shared list every holder, then every waiter in
line order; an exclusive lock lists the processes waiting for it with --wait,
in arrival order. --watch redraws the view on every change until Ctrl-C; when
stdout is not a terminal it prints one line per change instead.`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeLockNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Name = args[0]
			}
			if opts.Watch && (opts.JSON || opts.PruneExpired) {
				return usageError("--watch does not combine with --json or --prune-expired")
			}
			if runF != nil {
				return runF(opts)
			}
			if opts.Watch {
				return runStatusWatch(cmd.Context(), f, opts)
			}
			return runStatus(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON, including which root was chosen and why")
	cmd.Flags().BoolVar(&opts.PruneExpired, "prune-expired", false, "remove stale locks and expired freezes first")
	cmd.Flags().BoolVar(&opts.Watch, "watch", false, "redraw on every change until Ctrl-C (one line per change when not a terminal)")
	return cmd
}

type statusJSON struct {
	lokt.Location
	Locks   []lockJSON     `json:"locks"`
	Freezes []*lokt.Freeze `json:"freezes"`
	Pruned  []string       `json:"pruned,omitempty"`
}

func runStatus(ctx context.Context, f *Factory, opts *StatusOptions) error {
	loc, err := f.Location()
	if err != nil {
		return err
	}
	out := statusJSON{Location: loc, Locks: []lockJSON{}, Freezes: []*lokt.Freeze{}}
	var problems []error
	root, err := f.Root(false)
	switch {
	case errors.Is(err, errNoRoot):
		if opts.Name != "" {
			return fmt.Errorf("lock %q: %w (lock root %s does not exist yet)", opts.Name, lokt.ErrNotFound, loc.Dir)
		}
	case err != nil:
		return err
	default:
		if opts.PruneExpired {
			id := f.Identity()
			out.Pruned, err = root.Prune(ctx, lokt.Actor{Identity: id, Holder: lokt.Self()})
			if errors.Is(err, store.ErrUnavailable) {
				return err
			}
			if err != nil {
				problems = append(problems, err)
			}
		}
		var list []*lokt.Status
		if opts.Name != "" {
			st, err := root.Get(ctx, opts.Name)
			switch {
			case errors.Is(err, lokt.ErrNotFound):
				// A freeze alone is still something to show.
				if _, ferr := root.GetFreeze(ctx, opts.Name); ferr != nil {
					return err
				}
			case err != nil:
				return err
			default:
				list = []*lokt.Status{st}
			}
		} else {
			list, err = root.List(ctx)
			if errors.Is(err, store.ErrUnavailable) {
				return err // an unread store is not an empty one
			}
			if err != nil {
				problems = append(problems, err)
			}
		}
		for _, st := range list {
			out.Locks = append(out.Locks, toLockJSON(st))
			if st.State == lokt.StateUnsupported {
				problems = append(problems, st.Problem)
			}
		}
		if opts.Name != "" {
			fr, err := root.GetFreeze(ctx, opts.Name)
			if errors.Is(err, store.ErrUnavailable) {
				return err
			}
			if err == nil {
				out.Freezes = append(out.Freezes, fr)
			}
		} else {
			fr, err := root.Freezes(ctx)
			if errors.Is(err, store.ErrUnavailable) {
				return err
			}
			out.Freezes = append(out.Freezes, fr...)
			if err != nil {
				problems = append(problems, err)
			}
		}
	}
	if opts.JSON {
		if err := writeJSON(f.IO.Out, out); err != nil {
			return err
		}
	} else {
		printStatus(f, &out)
	}
	return joinDistinct(problems)
}

// joinDistinct joins errors, dropping repeats: pruning and listing meet the
// same unreadable record, which deserves one message.
func joinDistinct(errs []error) error {
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		if e != nil && !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

func printStatus(f *Factory, s *statusJSON) {
	now := time.Now()
	w := f.IO.Out
	for _, name := range s.Pruned {
		textf(w, "pruned stale lock %q\n", name)
	}
	if len(s.Locks) == 0 && len(s.Freezes) == 0 {
		textf(w, "no locks in %s\n", s.Dir)
		return
	}
	if len(s.Locks) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tHOLDER\tPID\tAGE\tLEFT\tSTATE")
		for _, l := range s.Locks {
			if l.Holders != nil {
				printLine(tw, l, now)
				continue
			}
			if l.LockID == "" {
				textf(tw, "%s\t?\t?\t?\t?\t%s\n", l.Name, l.State)
				continue
			}
			textf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", l.Name, holderText(l.Lock), l.PID, ago(now, l.AcquiredAt), left(now, l.ExpiresAt), l.State)
			printWaiters(tw, l, now)
		}
		_ = tw.Flush()
	}
	if len(s.Freezes) > 0 {
		if len(s.Locks) > 0 {
			fmt.Fprintln(w)
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FROZEN\tBY\tLEFT\tREASON")
		for _, fr := range s.Freezes {
			textf(tw, "%s\t%s\t%s\t%s\n", fr.Name, labelText(fr.Owner, fr.Host, fr.AgentID), left(now, &fr.ExpiresAt), fr.Reason)
		}
		_ = tw.Flush()
	}
}
