package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
)

// ExistsOptions are the parsed arguments of `lokt exists`.
type ExistsOptions struct{ Name string }

func newCmdExists(f *Factory, runF func(*ExistsOptions) error) *cobra.Command {
	opts := &ExistsOptions{}
	return &cobra.Command{
		Use:               "exists NAME",
		Short:             "Exit 0 if a live holder has NAME, else 3 (prints nothing)",
		Example:           `  if lokt exists deploy; then echo "a deploy is running"; fi`,
		Args:              exactlyOneName,
		ValidArgsFunction: completeLockNames(f),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runExists(f, opts)
		},
	}
}

func runExists(f *Factory, opts *ExistsOptions) error {
	root, err := f.Root(false)
	if errors.Is(err, errNoRoot) {
		return silentExit(ExitNotFound)
	}
	if err != nil {
		return err
	}
	st, err := root.Get(context.Background(), opts.Name)
	switch {
	case errors.Is(err, lokt.ErrNotFound):
		return silentExit(ExitNotFound)
	case err != nil:
		return err
	case st.State == lokt.StateUnsupported:
		return st.Problem
	case st.State == lokt.StateLive:
		return nil
	}
	return silentExit(ExitNotFound)
}
