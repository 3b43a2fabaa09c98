package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt/store"
)

// Shell completion comes from cobra's built-in `completion` command; these
// functions add the names of existing locks and freezes to it. They read the
// root without creating it, and stay silent on any error: a completion must
// never print a message into the user's command line.

func completeLockNames(f *Factory) cobra.CompletionFunc {
	return completeNames(f, store.Locks)
}

func completeFreezeNames(f *Factory) cobra.CompletionFunc {
	return completeNames(f, store.Freezes)
}

func completeNames(f *Factory, ns store.Namespace) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		root, err := f.Root(false)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names, err := root.Names(context.Background(), ns)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, n := range names {
			if strings.HasPrefix(n, prefix) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
