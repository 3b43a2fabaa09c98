package cli

import (
	"context"
	"errors"
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
	// ConflictExit is the exit code when the lock is held or frozen, or the
	// wait timed out (default 2), as flock -E.
	ConflictExit int
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
lock tied to no process (a Makefile recipe or CI step whose shell exits).
With $LOKT_HOLDER_PID set (and no --pid), the lock is held on behalf of that
process: a harness that runs each command in a fresh shell exports its own pid
once, and every lock lives as long as the harness.

--timeout implies --wait. With --quiet a held or frozen lock prints nothing
(errors still do); --conflict-exit-code N exits N instead of 2 then.`,
		Example: `  lokt lock deploy --ttl 30m
  lokt lock deploy --timeout 5m
  lokt lock migrations --pid 0 --ttl 1h
  lokt lock nightly --quiet --conflict-exit-code 0 || exit 1`,
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
			// As flock -w: a bound on the wait asks for the wait.
			opts.Wait = opts.Wait || cmd.Flags().Changed("timeout")
			if err := checkConflictExit(opts.ConflictExit); err != nil {
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
			return conflictExit(runLock(cmd.Context(), f, opts), opts.Quiet, opts.ConflictExit)
		},
	}
	cmd.Flags().StringVar(&ttl, "ttl", "", "time to live, e.g. 30m (default: no expiry while the holder lives)")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until the lock is free instead of exiting 2")
	cmd.Flags().StringVar(&timeout, "timeout", "10m", "wait at most this long (implies --wait; 0 = no limit)")
	cmd.Flags().IntVar(&opts.PID, "pid", 0, "hold on behalf of this process (0 = no process; needs --ttl)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the lock as JSON")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print nothing on success, while waiting, or when held (errors still print)")
	cmd.Flags().IntVar(&opts.ConflictExit, "conflict-exit-code", ExitHeld, "exit with this code (0-255) when held, frozen or timed out")
	addSlotFlags(cmd, &slots, &opts.Shared)
	return cmd
}

// checkConflictExit validates --conflict-exit-code.
func checkConflictExit(code int) error {
	if code < 0 || code > 255 {
		return usageError("--conflict-exit-code must be 0 to 255 (got %d); e.g. 0 to treat a held lock as success, or 75 (EX_TEMPFAIL)", code)
	}
	return nil
}

// conflictExit applies --quiet and --conflict-exit-code to what lock or
// guard returned: a lock held or frozen by someone else, or a wait that
// timed out, exits code, silently with quiet. Everything else, including a
// nested acquisition that would deadlock, keeps its code and message.
func conflictExit(err error, quiet bool, code int) error {
	var ee *exitError
	var held *lokt.HeldError
	var frozen *lokt.FrozenError
	conflict := errors.As(err, &held) || errors.As(err, &frozen)
	if !conflict || errors.As(err, &ee) {
		return err
	}
	if quiet {
		return silentExit(code)
	}
	return &exitError{code: code, err: err}
}

// askedTimeout reports a wait that reached --timeout with the duration the
// user asked for, not the measured one rounded (2.5s, not 3s).
type askedTimeout struct {
	asked time.Duration
	err   *lokt.TimeoutError
}

func (e *askedTimeout) Error() string {
	return fmt.Sprintf("gave up after waiting %s: %v", formatDuration(e.asked), e.err.Blocker)
}

func (e *askedTimeout) Unwrap() error { return e.err }

func runLock(ctx context.Context, f *Factory, opts *LockOptions) error {
	root, err := f.Root(true)
	if err != nil {
		return err
	}
	holder := f.Caller()
	if opts.PID < 0 {
		// An unusable $LOKT_HOLDER_PID is an error, never a silent
		// fallback to a holder that may die at once.
		h, ok, err := f.envHolder()
		if err != nil {
			return err
		}
		if ok {
			holder = h
		}
	} else {
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
		var te *lokt.TimeoutError
		if timeout > 0 && errors.As(err, &te) {
			return zero, &askedTimeout{asked: timeout, err: te}
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
