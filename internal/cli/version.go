package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt/internal/version"
)

// VersionOptions are the parsed flags of `lokt version`.
type VersionOptions struct{ JSON bool }

func newCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print version, commit, build date and protocol version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runVersion(f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func runVersion(f *Factory, opts *VersionOptions) error {
	info := version.Get()
	if opts.JSON {
		return writeJSON(f.IO.Out, info)
	}
	fmt.Fprintln(f.IO.Out, versionLine())
	return nil
}

// versionLine is what both "lokt version" and "lokt --version" print.
func versionLine() string {
	info := version.Get()
	return fmt.Sprintf("lokt %s (commit %s, built %s, %s, protocol %d)", info.Version, info.Commit, info.Date, info.GoVersion, info.ProtocolVersion)
}
