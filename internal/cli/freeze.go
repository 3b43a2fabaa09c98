package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
)

// FreezeOptions are the parsed flags of `lokt freeze`.
type FreezeOptions struct {
	Name   string
	TTL    time.Duration
	Reason string
	JSON   bool
	Quiet  bool
	// Force replaces another owner's freeze (recorded in the audit log).
	Force bool
}

func newCmdFreeze(f *Factory, runF func(*FreezeOptions) error) *cobra.Command {
	opts := &FreezeOptions{}
	var ttl string
	cmd := &cobra.Command{
		Use:   "freeze NAME --ttl D [--reason TEXT]",
		Short: "Block new acquisitions of NAME until the TTL ends",
		Long: `Freeze NAME: until the TTL ends (or "lokt unfreeze NAME"), "lokt lock NAME" and
"lokt guard NAME" exit 2 saying who froze it, why and until when; with --wait
they wait the freeze out. A current holder is not interrupted. A freeze always
has a TTL, so a forgotten one ends by itself. Freezes have their own
namespace: the freeze of "deploy" and a lock named "freeze-deploy" are
unrelated. Freezing NAME again under the same owner replaces the freeze;
replacing another owner's freeze (and its reason) needs --force, and the audit
log's freeze event then names whose freeze was replaced (frozen_by).`,
		Example: `  lokt freeze deploy --ttl 2h --reason "release 1.4 in progress"
  lokt freeze migrations --ttl 30m`,
		Args:              exactlyOneName,
		ValidArgsFunction: completeLockNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if !cmd.Flags().Changed("ttl") {
				return usageError("freeze needs --ttl, so that a forgotten freeze ends by itself, e.g.\n  lokt freeze %s --ttl 30m --reason \"release in progress\"", opts.Name)
			}
			var err error
			if opts.TTL, err = parseDuration("ttl", ttl, false); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runFreeze(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().StringVar(&ttl, "ttl", "", "how long the freeze lasts, e.g. 30m (required)")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why, shown to everyone the freeze turns away")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the freeze as JSON")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print nothing on success")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace another owner's freeze (recorded in the audit log)")
	return cmd
}

func runFreeze(ctx context.Context, f *Factory, opts *FreezeOptions) error {
	root, err := f.Root(true)
	if err != nil {
		return err
	}
	fr, err := root.Freeze(ctx, opts.Name, lokt.FreezeOptions{Identity: f.Identity(), Holder: f.Caller(), TTL: opts.TTL, Reason: opts.Reason, Force: opts.Force})
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(f.IO.Out, fr)
	}
	if opts.Quiet {
		return nil
	}
	fmt.Fprintf(f.IO.Out, "froze %q until %s (%s)", fr.Name, fr.ExpiresAt.Local().Format(time.RFC3339), shortDur(opts.TTL))
	if fr.Reason != "" {
		fmt.Fprintf(f.IO.Out, ": %s", fr.Reason)
	}
	fmt.Fprintln(f.IO.Out)
	// Say so when the freeze cannot stop what is already running.
	if st, err := root.Get(ctx, opts.Name); err == nil && st.State == lokt.StateLive {
		fmt.Fprintf(f.IO.Out, "  %s pid %d still holds it; a freeze only blocks new acquisitions\n", holderText(st.Lock), st.Lock.PID)
	} else if err != nil && !errors.Is(err, lokt.ErrNotFound) {
		return err
	}
	return nil
}
