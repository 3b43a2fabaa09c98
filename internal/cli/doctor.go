package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/doctor"
)

// DoctorOptions are the parsed flags of `lokt doctor`.
type DoctorOptions struct{ JSON bool }

func newCmdDoctor(f *Factory, runF func(*DoctorOptions) error) *cobra.Command {
	opts := &DoctorOptions{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the lock root, its filesystem, clock, permissions and leftovers",
		Long: `Check everything lokt depends on, and say how to fix what is wrong: which lock
root is used and why, whether it is usable (a real write, rename, flock and
delete round trip on doctor's own files), its filesystem type (network and
userspace filesystems get a warning; a failure with LOKT_REQUIRE_LOCAL_FS=1),
the clock, permissions of the root and the audit log, and what crashes or a
newer lokt left behind: corrupt records, stale locks, temporary files.

doctor only reads: it never changes, breaks or releases a lock, and records
nothing in the audit log. Exit 0 when no check fails (warnings included), 1
otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runDoctor(f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"protocol_version": 1, "root": ..., "checks": [...]}`)
	return cmd
}

func runDoctor(f *Factory, opts *DoctorOptions) error {
	var rep *doctor.Report
	if f.IsEtcd() {
		var err error
		if rep, err = etcdDoctor(f); err != nil {
			return err
		}
	} else {
		rep = doctor.Run(doctor.Options{
			Locate: func() (lokt.Location, error) { return f.Location() },
			Getenv: f.Getenv,
		})
	}
	if opts.JSON {
		if err := writeJSON(f.IO.Out, rep); err != nil {
			return err
		}
	} else {
		printDoctor(f, rep)
	}
	if rep.Failed() {
		return silentExit(ExitError)
	}
	return nil
}

func printDoctor(f *Factory, rep *doctor.Report) {
	w := f.IO.Out
	if rep.Root != "" {
		textf(w, "lock root: %s (%s)\n\n", rep.Root, rep.RootSource)
	}
	width := 0
	for _, c := range rep.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range rep.Checks {
		label := map[doctor.Status]string{doctor.OK: "ok", doctor.Warn: "WARN", doctor.Fail: "FAIL"}[c.Status]
		// Messages quote what doctor found on disk: other users' labels,
		// file names, record contents.
		textf(w, "%-4s  %-*s  %s\n", label, width, c.Name, c.Message)
		if c.Remedy != "" && c.Status != doctor.OK {
			textf(w, "      %-*s  fix: %s\n", width, "", c.Remedy)
		}
	}
	warns, fails := rep.Count(doctor.Warn), rep.Count(doctor.Fail)
	var summary []string
	summary = append(summary, fmt.Sprintf("%d ok", rep.Count(doctor.OK)))
	summary = append(summary, plural(warns, "warning"), plural(fails, "failure"))
	fmt.Fprintf(w, "\n%s\n", strings.Join(summary, ", "))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
