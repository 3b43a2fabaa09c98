package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
)

// UnfreezeOptions are the parsed flags of `lokt unfreeze`.
type UnfreezeOptions struct {
	Name  string
	JSON  bool
	Quiet bool
}

func newCmdUnfreeze(f *Factory, runF func(*UnfreezeOptions) error) *cobra.Command {
	opts := &UnfreezeOptions{}
	cmd := &cobra.Command{
		Use:   "unfreeze NAME",
		Short: "Lift the freeze of NAME",
		Long: `Lift the freeze of NAME so it can be acquired again. Exits 3 if NAME is not
frozen; an expired freeze counts as not frozen and is removed.`,
		Example:           `  lokt unfreeze deploy`,
		Args:              exactlyOneName,
		ValidArgsFunction: completeFreezeNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runUnfreeze(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the lifted freeze as JSON")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print nothing on success")
	return cmd
}

func runUnfreeze(ctx context.Context, f *Factory, opts *UnfreezeOptions) error {
	root, err := f.Root(false)
	if errors.Is(err, errNoRoot) {
		return fmt.Errorf("%q is not frozen: %w (no lock root yet)", opts.Name, lokt.ErrNotFound)
	}
	if err != nil {
		return err
	}
	fr, err := root.Unfreeze(ctx, opts.Name, lokt.Actor{Identity: f.Identity(), Holder: f.Caller()})
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(f.IO.Out, fr)
	}
	if !opts.Quiet {
		textf(f.IO.Out, "unfroze %q (frozen by %s %s ago", fr.Name, labelText(fr.Owner, fr.Host, fr.AgentID), shortDur(time.Since(fr.FrozenAt)))
		if fr.Reason != "" {
			textf(f.IO.Out, ": %s", fr.Reason)
		}
		fmt.Fprintln(f.IO.Out, ")")
	}
	return nil
}
