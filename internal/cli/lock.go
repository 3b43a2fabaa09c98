package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
)

// LockOptions are the parsed flags of `lokt lock`.
type LockOptions struct {
	Name    string
	TTL     time.Duration
	Wait    bool
	Timeout time.Duration
	// PID is the holder; -1 means the caller (lokt's parent process).
	PID   int
	JSON  bool
	Quiet bool
	// Slots (1..lokt.MaxSlots) or Shared hold NAME alongside others.
	Slots  int
	Shared bool
}

func newCmdLock(f *Factory, runF func(*LockOptions) error) *cobra.Command {
	opts := &LockOptions{}
	var ttl, timeout, slots string
	cmd := &cobra.Command{
		Use:   "lock NAME",
		Short: "Acquire (or, for the same holder, refresh) a lock",
		Long: `Acquire the lock NAME on behalf of the process that ran lokt (your shell or
script): the lock stays held while that process lives, until "lokt unlock NAME",
or until its --ttl passes. Running it again from the same process refreshes it.

Use --pid PID to hold on behalf of another process, or --pid 0 --ttl D for a
lock tied to no process (a Makefile recipe or CI step whose shell exits).`,
		Example: `  lokt lock deploy --ttl 30m
  lokt lock deploy --wait --timeout 5m
  lokt lock migrations --pid 0 --ttl 1h`,
		Args:              exactlyOneName,
		ValidArgsFunction: completeLockNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			var err error
			if opts.TTL, err = optionalDuration(cmd, "ttl", ttl, false); err != nil {
				return err
			}
			if opts.Timeout, err = parseDuration("timeout", timeout, true); err != nil {
				return err
			}
			if opts.Slots, err = slotsFlag(cmd, slots, opts.Shared); err != nil {
				return err
			}
			if !cmd.Flags().Changed("pid") {
				opts.PID = -1
			} else if opts.PID < 0 {
				return usageError("--pid must be a process id, or 0 for no process (got %d)", opts.PID)
			}
			if runF != nil {
				return runF(opts)
			}
			return runLock(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().StringVar(&ttl, "ttl", "", "time to live, e.g. 30m (default: no expiry while the holder lives)")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until the lock is free instead of exiting 2")
	cmd.Flags().StringVar(&timeout, "timeout", "10m", "with --wait: give up after this long (0 = never)")
	cmd.Flags().IntVar(&opts.PID, "pid", 0, "hold on behalf of this process (0 = no process; needs --ttl)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the lock as JSON")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print nothing on success or while waiting")
	addSlotFlags(cmd, &slots, &opts.Shared)
	return cmd
}

func runLock(ctx context.Context, f *Factory, opts *LockOptions) error {
	root, err := f.Root(true)
	if err != nil {
		return err
	}
	holder := f.Caller()
	if opts.PID >= 0 {
		if holder, err = lokt.ProcessHolder(opts.PID); err != nil {
			return usageError("--pid %d: %v", opts.PID, err)
		}
	}
	ao := lokt.AcquireOptions{Identity: f.Identity(), Holder: holder, TTL: opts.TTL, Wait: opts.Wait, Slots: opts.Slots, Shared: opts.Shared}
	l, err := acquire(ctx, f, root, opts.Name, ao, opts.Timeout, opts.Quiet)
	if err != nil {
		return err
	}
	if opts.JSON {
		st := &lokt.Status{Name: l.Name, Lock: l, State: lokt.StateLive}
		return writeJSON(f.IO.Out, toLockJSON(st))
	}
	if !opts.Quiet {
		verb := "acquired"
		if l.RenewedAt != nil {
			verb = "refreshed"
		}
		exp := "no expiry; held while pid " + fmt.Sprint(l.PID) + " lives"
		if l.ExpiresAt != nil {
			exp = "expires " + l.ExpiresAt.Local().Format(time.RFC3339)
		}
		if l.PID == 0 {
			exp += " (no holder process)"
		}
		fmt.Fprintf(f.IO.Out, "%s %q (%slock_id %s, %s)\n", verb, l.Name, modeText(l), l.LockID, exp)
	}
	return nil
}

// acquire runs an acquisition with the CLI's wait behaviour: --timeout as a
// deadline, SIGINT/SIGTERM ending the wait cleanly, progress on stderr, and
// an immediate exit 2 when the holder is this process's own ancestor (a
// guarded command asking for its guard's lock would otherwise wait forever).
func acquire(ctx context.Context, f *Factory, root *lokt.Root, name string, ao lokt.AcquireOptions, timeout time.Duration, quiet bool) (*lokt.Lock, error) {
	return waitFor(ctx, f, root, name, &ao, timeout, quiet, func(ctx context.Context) (*lokt.Lock, error) {
		return root.Acquire(ctx, name, ao)
	})
}

// waitFor runs take (an Acquire or a Hold of name with the options *ao)
// the way lock and guard wait: bounded by timeout, stopped cleanly by an
// interrupt, with progress unless quiet, and failing at once when the
// holder is this process's own ancestor. It sets ao.OnBlocked before take
// runs.
func waitFor[T any](ctx context.Context, f *Factory, root *lokt.Root, name string, ao *lokt.AcquireOptions, timeout time.Duration, quiet bool, take func(context.Context) (T, error)) (T, error) {
	var zero T
	var nested error
	checked := ""
	if ao.Wait {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		var sig func() int
		ctx, sig = interruptContext(ctx)
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		var p *progress
		if !quiet {
			p = newProgress(f.IO, name)
		}
		ao.OnBlocked = func(blocker error) {
			if nested == nil {
				nested = nestedError(f, root, blocker, &checked)
			}
			if nested != nil {
				stop()
			} else if p != nil {
				p.update(blocker)
			}
		}
		v, err := take(ctx)
		if p != nil {
			p.done() // clear the line before anything else writes to the terminal
		}
		if nested != nil {
			return zero, nested
		}
		if n := sig(); n != 0 && err != nil {
			return zero, &exitError{code: 128 + n, err: fmt.Errorf("interrupted while waiting for %q; nothing was acquired", name)}
		}
		return v, err
	}
	v, err := take(ctx)
	if err != nil {
		if nested = nestedError(f, root, err, &checked); nested != nil {
			return zero, nested
		}
	}
	return v, err
}

// optionalDuration parses a flag that may be absent (zero) but, when given,
// must be a positive duration.
func optionalDuration(cmd *cobra.Command, flag, value string, allowZero bool) (time.Duration, error) {
	if !cmd.Flags().Changed(flag) {
		return 0, nil
	}
	return parseDuration(flag, value, allowZero)
}
