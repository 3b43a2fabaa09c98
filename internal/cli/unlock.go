package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
)

// UnlockOptions are the parsed flags of `lokt unlock`.
type UnlockOptions struct {
	Name       string
	BreakStale bool
	Force      bool
	All        bool
	Owner      string
	JSON       bool
	Quiet      bool
}

func newCmdUnlock(f *Factory, runF func(*UnlockOptions) error) *cobra.Command {
	opts := &UnlockOptions{}
	cmd := &cobra.Command{
		Use:   "unlock NAME | --all",
		Short: "Release a lock (or break a stale one)",
		Long: `Release NAME. Only the lock's owner ($LOKT_OWNER, else your user name) may
release it, and only from its holder: the process it was taken for (the shell
that ran "lokt lock"), or a process started under it (a command run by the
guard that holds it). While another holder still runs (guard's command tree
included), or cannot be checked from here (on another host, in another PID
namespace), unlock exits 4, names the holder and leaves the lock alone. A
lock whose holder is gone, whose TTL has passed, or that was taken with
--pid 0 is released by its owner from anywhere.

--break-stale removes the lock only if it is stale (TTL passed, holder
process gone, or file corrupt), whoever owns it. --force removes it whoever
holds it: break-glass, recorded in the audit log as a force-break by you.

--all releases every lock owned by you (or by --owner). Locks whose holder
still runs elsewhere are left in place and listed (exit 4) unless --force is
given too.`,
		Example: `  lokt unlock deploy
  lokt unlock deploy --break-stale
  lokt unlock --all --owner ci-runner-3
  lokt unlock --all --force`,
		ValidArgsFunction: completeLockNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.All && len(args) > 0:
				return usageError("give either NAME or --all, not both")
			case opts.All && opts.BreakStale:
				return usageError("--all releases your own locks; it does not combine with --break-stale (lokt status --prune-expired removes every stale lock)")
			case !opts.All:
				if err := exactlyOneName(cmd, args); err != nil {
					return err
				}
				opts.Name = args[0]
			}
			if opts.BreakStale && opts.Force {
				return usageError("choose one of --break-stale and --force")
			}
			if cmd.Flags().Changed("owner") && !opts.All {
				return usageError("--owner goes with --all")
			}
			if runF != nil {
				return runF(opts)
			}
			return runUnlock(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.BreakStale, "break-stale", false, "remove the lock only if it is stale")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "remove the lock whoever holds it (break-glass, audited)")
	cmd.Flags().BoolVar(&opts.All, "all", false, "release every lock you own")
	cmd.Flags().StringVar(&opts.Owner, "owner", "", "with --all: release the locks of this owner instead")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print what was released as JSON")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print nothing on success")
	return cmd
}

// released is one lock unlock removed, and whether it took --force.
type released struct {
	lock   *lokt.Lock
	forced bool
}

func runUnlock(ctx context.Context, f *Factory, opts *UnlockOptions) error {
	root, err := f.Root(false)
	if errors.Is(err, errNoRoot) {
		if opts.All {
			return reportReleased(f, opts, nil, nil)
		}
		return fmt.Errorf("lock %q: %w (no lock root yet)", opts.Name, lokt.ErrNotFound)
	}
	if err != nil {
		return err
	}
	ro := lokt.ReleaseOptions{Identity: f.Identity(), Holder: f.Caller(), IsCaller: callerAncestry(root)}
	if opts.All {
		return unlockAll(ctx, f, root, opts, ro)
	}
	switch {
	case opts.BreakStale:
		ro.Mode = lokt.BreakStale
	case opts.Force:
		ro.Mode = lokt.Force
	}
	l, err := root.Release(ctx, opts.Name, ro)
	var held *lokt.HeldError
	if errors.As(err, &held) && opts.BreakStale {
		// Flattened to text: the held-lock advice (add --wait) is for lock.
		return &exitError{code: ExitHeld, err: fmt.Errorf("%s\n  it is not stale, so --break-stale left it alone; --force breaks it anyway", printableError(err, err.Error()))}
	}
	if err != nil {
		return err
	}
	return reportReleased(f, opts, []released{{lock: l, forced: opts.Force}}, nil)
}

// callerAncestry is how unlock recognises a running holder as the caller
// beyond lokt's parent: the holder is an ancestor of this process, as the
// guard is of the command it runs. Holders on other hosts, or in another
// PID namespace, whose pids name other processes here, are never ours.
func callerAncestry(root *lokt.Root) func(lokt.Holder) bool {
	self := lokt.Self()
	return func(h lokt.Holder) bool {
		return h.Host == root.Host() && (h.NS == "" || h.NS == self.NS) && isAncestor(h.PID, h.Start)
	}
}

func unlockAll(ctx context.Context, f *Factory, root *lokt.Root, opts *UnlockOptions, ro lokt.ReleaseOptions) error {
	// --owner chooses whose locks; the audit log still names the caller.
	owner := ro.Owner
	if opts.Owner != "" {
		owner, ro.AsOwner = opts.Owner, opts.Owner
	}
	list, err := root.List(ctx)
	if err != nil {
		return err
	}
	var done []released
	var skipped []*lokt.LiveHolderError
	var errs []error
	for _, st := range list {
		if st.Lock == nil || st.Lock.Owner != owner {
			continue
		}
		l, err := root.Release(ctx, st.Name, ro)
		var live *lokt.LiveHolderError
		forced := false
		if errors.As(err, &live) && opts.Force {
			// Break exactly the acquisition that was refused, not one
			// that replaced it in between.
			fo := ro
			fo.Mode, fo.LockID = lokt.Force, live.Lock.LockID
			l, err = root.Release(ctx, st.Name, fo)
			forced = true
		}
		switch {
		case errors.Is(err, lokt.ErrNotFound), errors.Is(err, lokt.ErrLost):
			// Released or replaced by someone else meanwhile.
		case errors.As(err, &live):
			skipped = append(skipped, live)
		case err != nil:
			errs = append(errs, err)
		default:
			done = append(done, released{lock: l, forced: forced})
		}
	}
	if err := reportReleased(f, opts, done, skipped); err != nil {
		return err
	}
	if len(skipped) > 0 {
		errs = append(errs, skippedError(skipped))
	}
	return errors.Join(errs...)
}

// skippedError lists the locks --all left to their running holders. It
// exits 4, like unlock NAME on one of them.
func skippedError(skipped []*lokt.LiveHolderError) error {
	var b strings.Builder
	fmt.Fprintf(&b, "left %d lock(s) in place: their holders are still running and are not this process", len(skipped))
	for _, s := range skipped {
		fmt.Fprintf(&b, "\n  %q: held by %s", s.Lock.Name, liveHolderText(s))
	}
	b.WriteString("\n  to release them anyway: lokt unlock --all --force (break-glass; recorded in the audit log)")
	return &exitError{code: ExitNotOwner, err: errors.New(b.String())}
}

// liveHolderText names a holder that blocks an unlock: who, which process
// (and its command name when this host can tell), and since when.
func liveHolderText(e *lokt.LiveHolderError) string {
	l := e.Lock
	s := holderWithPID(l)
	if e.Foreign != "" {
		return s + " " + e.Foreign + " (lokt cannot check whether it still runs)"
	}
	if name := processName(l.PID); name != "" {
		s += " (" + printable(name) + ")"
	}
	return s + ", since " + l.AcquiredAt.Local().Format(time.RFC3339)
}

func reportReleased(f *Factory, opts *UnlockOptions, done []released, skipped []*lokt.LiveHolderError) error {
	if opts.JSON {
		out := make([]lockJSON, 0, len(done))
		for _, r := range done {
			out = append(out, lockJSON{Lock: r.lock, TTLSec: int64(r.lock.TTL / time.Second), State: "released"})
		}
		v := map[string]any{"released": out}
		if opts.All {
			left := make([]lockJSON, 0, len(skipped))
			for _, s := range skipped {
				left = append(left, lockJSON{Lock: s.Lock, TTLSec: int64(s.Lock.TTL / time.Second), State: lokt.StateLive})
			}
			v["skipped"] = left
		}
		return writeJSON(f.IO.Out, v)
	}
	if opts.Quiet {
		return nil
	}
	if opts.All && len(done) == 0 && len(skipped) == 0 {
		fmt.Fprintln(f.IO.Out, "no locks to release")
	}
	for _, r := range done {
		verb := "released"
		switch {
		case r.forced:
			verb = "force-broke"
		case opts.BreakStale:
			verb = "broke stale lock"
		}
		textf(f.IO.Out, "%s %q (held by %s)\n", verb, r.lock.Name, holderWithPID(r.lock))
	}
	return nil
}
