package cli

import (
	"context"
	"errors"
	"fmt"
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
release it. --break-stale removes the lock only if it is stale (TTL passed,
holder process gone, or file corrupt); --force removes it whoever holds it.
--all releases every lock owned by you (or by --owner).`,
		Example: `  lokt unlock deploy
  lokt unlock deploy --break-stale
  lokt unlock --all --owner ci-runner-3`,
		ValidArgsFunction: completeLockNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.All && len(args) > 0:
				return usageError("give either NAME or --all, not both")
			case opts.All && (opts.BreakStale || opts.Force):
				return usageError("--all releases only your own locks; it does not combine with --break-stale or --force")
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

func runUnlock(ctx context.Context, f *Factory, opts *UnlockOptions) error {
	root, err := f.Root(false)
	if errors.Is(err, errNoRoot) {
		if opts.All {
			return reportReleased(f, opts, nil)
		}
		return fmt.Errorf("lock %q: %w (no lock root yet)", opts.Name, lokt.ErrNotFound)
	}
	if err != nil {
		return err
	}
	id := f.Identity()
	ro := lokt.ReleaseOptions{Identity: id, Holder: f.Caller()}
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
		return &exitError{code: ExitHeld, err: fmt.Errorf("%s\n  it is not stale, so --break-stale left it alone; --force breaks it anyway", err)}
	}
	if err != nil {
		return err
	}
	return reportReleased(f, opts, []*lokt.Lock{l})
}

func unlockAll(ctx context.Context, f *Factory, root *lokt.Root, opts *UnlockOptions, ro lokt.ReleaseOptions) error {
	if opts.Owner != "" {
		ro.Owner = opts.Owner
	}
	list, err := root.List(ctx)
	if err != nil {
		return err
	}
	var released []*lokt.Lock
	var errs []error
	for _, st := range list {
		if st.Lock == nil || st.Lock.Owner != ro.Owner {
			continue
		}
		l, err := root.Release(ctx, st.Name, ro)
		switch {
		case errors.Is(err, lokt.ErrNotFound):
		case err != nil:
			errs = append(errs, err)
		default:
			released = append(released, l)
		}
	}
	if err := reportReleased(f, opts, released); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func reportReleased(f *Factory, opts *UnlockOptions, locks []*lokt.Lock) error {
	if opts.JSON {
		out := make([]lockJSON, 0, len(locks))
		for _, l := range locks {
			out = append(out, lockJSON{Lock: l, TTLSec: int64(l.TTL / time.Second), State: "released"})
		}
		return writeJSON(f.IO.Out, map[string]any{"released": out})
	}
	if opts.Quiet {
		return nil
	}
	verb := "released"
	switch {
	case opts.Force:
		verb = "force-broke"
	case opts.BreakStale:
		verb = "broke stale lock"
	}
	if opts.All && len(locks) == 0 {
		fmt.Fprintln(f.IO.Out, "no locks to release")
	}
	for _, l := range locks {
		if l == nil {
			continue
		}
		fmt.Fprintf(f.IO.Out, "%s %q (held by %s)\n", verb, l.Name, holderWithPID(l))
	}
	return nil
}
