package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/lockfile"
)

// WhyOptions are the parsed flags of `lokt why`.
type WhyOptions struct {
	Name string
	JSON bool
}

func newCmdWhy(f *Factory, runF func(*WhyOptions) error) *cobra.Command {
	opts := &WhyOptions{}
	cmd := &cobra.Command{
		Use:   "why NAME",
		Short: "Explain whether NAME can be acquired now, and if not, why",
		Long: `Explain whether "lokt lock NAME" from this shell would succeed now.
Exit 0 if it would, 2 if a live holder or a freeze is in the way.`,
		Args:              exactlyOneName,
		ValidArgsFunction: completeLockNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runWhy(f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the verdict as JSON")
	return cmd
}

type whyJSON struct {
	Name       string       `json:"name"`
	Acquirable bool         `json:"acquirable"`
	Reasons    []string     `json:"reasons"`
	Lock       *lockJSON    `json:"lock,omitempty"`
	Freeze     *lokt.Freeze `json:"freeze,omitempty"`
}

func runWhy(f *Factory, opts *WhyOptions) error {
	if err := lockfile.ValidateName(opts.Name); err != nil {
		return err
	}
	v := whyJSON{Name: opts.Name, Acquirable: true}
	root, err := f.Root(false)
	switch {
	case errors.Is(err, errNoRoot):
		v.Reasons = append(v.Reasons, "no lock root exists yet, so nothing holds "+opts.Name)
	case err != nil:
		return err
	default:
		if err := explain(f, root, &v); err != nil {
			return err
		}
	}
	if opts.JSON {
		if err := writeJSON(f.IO.Out, v); err != nil {
			return err
		}
	} else {
		verdict := "can be acquired now"
		if !v.Acquirable {
			verdict = "cannot be acquired now"
		}
		textf(f.IO.Out, "%s %s:\n", opts.Name, verdict)
		for _, r := range v.Reasons {
			textf(f.IO.Out, "  - %s\n", r)
		}
	}
	if !v.Acquirable {
		return silentExit(ExitHeld)
	}
	return nil
}

func explain(f *Factory, root *lokt.Root, v *whyJSON) error {
	now := time.Now()
	name := v.Name
	fr, err := root.GetFreeze(context.Background(), name)
	switch {
	case err == nil:
		v.Acquirable = false
		v.Freeze = fr
		reason := sprintText("frozen by %s until %s (%s left)", labelText(fr.Owner, fr.Host, fr.AgentID), fr.ExpiresAt.Local().Format(time.RFC3339), shortDur(fr.ExpiresAt.Sub(now)))
		if fr.Reason != "" {
			reason += ": " + printable(fr.Reason)
		}
		v.Reasons = append(v.Reasons, reason, "lift it with: lokt unfreeze "+name)
	case !errors.Is(err, lokt.ErrNotFound):
		return err
	}
	st, err := root.Get(context.Background(), name)
	if errors.Is(err, lokt.ErrNotFound) {
		v.Reasons = append(v.Reasons, "no lock named "+name+" exists")
		return nil
	}
	if err != nil {
		return err
	}
	lj := toLockJSON(st)
	v.Lock = &lj
	l := st.Lock
	if st.Version == lokt.MultiVersion && st.State != lokt.StateUnsupported && st.State != lokt.StateCorrupt {
		v.Acquirable = false
		v.Reasons = append(v.Reasons, lineReasons(lj, now)...)
		return nil
	}
	// The waiters of a plain exclusive lock follow whatever its holder's
	// state says: their line only roughly decides who goes next.
	defer func() { v.Reasons = append(v.Reasons, waiterReasons(st.Waiters, now)...) }()
	switch st.State {
	case lokt.StateUnsupported:
		return st.Problem
	case lokt.StateCorrupt:
		v.Reasons = append(v.Reasons, sprintText("the lock file is corrupt (%v); the next lock or guard will replace it", st.Problem))
	case lokt.StateExpired:
		v.Reasons = append(v.Reasons, fmt.Sprintf("it was held by %s but its TTL ran out %s ago; the next lock or guard breaks it", holderWithPID(l), shortDur(now.Sub(*l.ExpiresAt))))
	case lokt.StateDead:
		v.Reasons = append(v.Reasons, fmt.Sprintf("it was held by %s, which has exited; the next lock or guard breaks it", holderWithPID(l)))
	case lokt.StateLive:
		if caller := f.Caller(); caller.PID != 0 && caller == l.Holder {
			v.Reasons = append(v.Reasons, fmt.Sprintf("this shell (pid %d) already holds it; lokt lock %s refreshes it", l.PID, name))
			return nil
		}
		v.Acquirable = false
		v.Reasons = append(v.Reasons, liveReasons(l, now, f.Identity().Owner, st.Foreign, st.Leased)...)
	}
	return nil
}

func liveReasons(l *lokt.Lock, now time.Time, caller, foreign string, leased bool) []string {
	who := fmt.Sprintf("held by %s since %s (%s)", holderWithPID(l), l.AcquiredAt.Local().Format(time.RFC3339), shortDur(now.Sub(l.AcquiredAt)))
	if l.PID == 0 {
		who = fmt.Sprintf("held by %s with no holder process since %s", holderText(l), l.AcquiredAt.Local().Format(time.RFC3339))
	}
	out := []string{who}
	switch {
	case l.ExpiresAt != nil:
		out = append(out, fmt.Sprintf("it expires at %s (in %s) unless renewed", l.ExpiresAt.Local().Format(time.RFC3339), shortDur(l.ExpiresAt.Sub(now))))
	case leased:
		where := ""
		if foreign != "" {
			where = " (" + foreign + ")"
		}
		out = append(out, fmt.Sprintf("it has no TTL: its holder%s keeps it on a lease, so it is held until the holder releases it or stops renewing the lease (it exited, died or lost the cluster); then it ends with the lease, about one lease TTL later (more if the cluster changes leader meanwhile)", where))
	case foreign == "on another host":
		out = append(out, fmt.Sprintf("it has no TTL and its holder is on host %s, which lokt cannot check from here: it is held until its holder releases it (or someone runs lokt unlock %s --force)", printable(l.Host), l.Name))
	case foreign != "":
		out = append(out, fmt.Sprintf("it has no TTL and its holder is %s, whose pids lokt cannot check from here: it is held while its process tree keeps its evidence, else until its holder releases it (or someone runs lokt unlock %s --force)", foreign, l.Name))
	default:
		out = append(out, fmt.Sprintf("it has no TTL: it is held until pid %d exits or runs lokt unlock %s", l.PID, l.Name))
	}
	switch {
	case leased:
		// The lease alone keeps it: the command's processes do not.
	case l.PGID != 0:
		out = append(out, fmt.Sprintf("its command (pid %d) and every process in its process group %d also keep it held while they run", l.ChildPID, l.PGID))
	case l.ChildPID != 0:
		out = append(out, fmt.Sprintf("its command (pid %d) also keeps it held while it runs", l.ChildPID))
	}
	if l.Owner == caller {
		out = append(out, "its owner label is yours ("+printable(caller)+"), but only its holder process releases it while it runs; wait for it with --wait, or break it if you are sure it is abandoned: lokt unlock "+l.Name+" --force")
	} else {
		out = append(out, "wait for it with --wait; break it only if you are sure it is abandoned: lokt unlock "+l.Name+" --force")
	}
	return out
}
