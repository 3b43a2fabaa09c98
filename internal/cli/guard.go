package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/lockfile"
)

// GuardOptions are the parsed flags of `lokt guard`.
type GuardOptions struct {
	Name string
	// Command is CMD ARGS..., everything after "--".
	Command    []string
	TTL        time.Duration
	Wait       bool
	Timeout    time.Duration
	KillOnLost bool
	Quiet      bool
	// ConflictExit is the exit code when the lock is held or frozen, or the
	// wait timed out, and CMD never started (default 2).
	ConflictExit int
}

// The variables a guarded command finds in its environment, so that nested
// tools can inspect or extend the lock (and so a nested guard can tell that
// its ancestor holds it).
const (
	envLock   = "LOKT_LOCK"
	envLockID = "LOKT_LOCK_ID"
	envRoot   = "LOKT_ROOT"
)

const (
	// killGrace is how long a child gets between SIGTERM and SIGKILL when
	// guard stops it (--kill-on-lost, or an internal error).
	killGrace = 10 * time.Second
	// verifyEvery is how often a guard without --ttl rereads its lock: with
	// no renewals, that is the only way to notice it was broken.
	verifyEvery = 2 * time.Second
	// maxAncestry bounds the walk up the process tree.
	maxAncestry = 64
)

func newCmdGuard(f *Factory, runF func(*GuardOptions) error) *cobra.Command {
	opts := &GuardOptions{}
	var ttl, timeout string
	cmd := &cobra.Command{
		Use:   "guard NAME [flags] -- CMD [ARGS...]",
		Short: "Hold NAME while CMD runs, and release it on every exit path",
		Long: `Acquire the lock NAME, run CMD with your stdin, stdout and stderr, and release
the lock when CMD ends, however it ends. guard exits with CMD's exit code
(128+N if CMD was killed by signal N, 127 if CMD was not found, 126 if it could
not be executed) and prints nothing on stdout of its own.

SIGINT, SIGTERM and SIGHUP sent to guard are passed to CMD; guard waits for it,
releases the lock and exits 128+N. If guard itself is killed outright, CMD
never runs unprotected: on Linux it is killed with guard, and everywhere the
lock stays held while CMD lives.

CMD sees LOKT_LOCK, LOKT_LOCK_ID and LOKT_ROOT in its environment.

With --ttl D the lock is renewed every D/2 while CMD runs: the TTL bounds how
long a crashed holder blocks others, not how long CMD may run. If the lock is
broken while CMD runs (lokt unlock --force), guard warns on stderr, and with
--kill-on-lost stops CMD (SIGTERM, then SIGKILL after 10s).`,
		Example: `  lokt guard deploy -- ./deploy.sh production
  lokt guard build --timeout 30m -- make -j8
  lokt guard backup --quiet --conflict-exit-code 0 -- ./backup.sh
  lokt guard nightly --ttl 2m --kill-on-lost -- ./backup.sh
  lokt guard report -- ./report.sh | jq .`,
		Args: guardArgs,
		// NAME completes to existing locks; after it, the shell's own
		// completion (commands, files) for CMD.
		ValidArgsFunction: func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return completeLockNames(f)(cmd, args, prefix)
			}
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			opts.Name, opts.Command = args[0], args[dash:]
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
			if runF != nil {
				return runF(opts)
			}
			// CMD's own exit codes come back as exitErrors and pass
			// through untouched.
			return conflictExit(runGuard(cmd.Context(), f, opts), opts.Quiet, opts.ConflictExit)
		},
	}
	// A command's own flags given without "--" fail here, before guardArgs.
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError("%v\n  if that flag is the command's, put -- before the command: lokt guard NAME [flags] -- CMD [ARGS...]", err)
	})
	cmd.Flags().StringVar(&ttl, "ttl", "", "renew the lock every TTL/2 while CMD runs, e.g. 2m (default: no expiry while guard lives)")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until the lock is free instead of exiting 2")
	cmd.Flags().StringVar(&timeout, "timeout", "10m", "wait at most this long (implies --wait; 0 = no limit)")
	cmd.Flags().BoolVar(&opts.KillOnLost, "kill-on-lost", false, "stop CMD if the lock is broken while it runs")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print no progress while waiting, and nothing when held (errors still print)")
	cmd.Flags().IntVar(&opts.ConflictExit, "conflict-exit-code", ExitHeld, "exit with this code (0-255) when held, frozen or timed out, without running CMD")
	return cmd
}

// guardArgs wants exactly NAME before "--" and a command after it. Without
// "--", cobra would parse the command's own flags as guard's.
func guardArgs(cmd *cobra.Command, args []string) error {
	const example = "\n  e.g. lokt guard build -- make -j8"
	dash := cmd.ArgsLenAtDash()
	switch {
	case dash < 0 && len(args) > 1:
		return usageError("put -- between NAME and the command, so the command's flags are not read as guard's: lokt guard %s -- %s", args[0], strings.Join(args[1:], " "))
	case dash < 0 && len(args) == 1:
		return usageError("guard needs a command to run after --%s", strings.Replace(example, "build", args[0], 1))
	case dash < 0 || dash == 0:
		return usageError("guard needs a lock NAME, then -- and the command to run%s", example)
	case dash > 1:
		return usageError("guard takes one lock NAME before -- (got %q)%s", args[:dash], example)
	case len(args) == dash:
		return usageError("guard needs a command to run after --%s", strings.Replace(example, "build", args[0], 1))
	}
	return nil
}

// guard is one run of `lokt guard`: the lock it holds and the child it
// protects. Its fields are only touched by the goroutine running runGuard;
// the heartbeat talks to it through channels.
type guard struct {
	f    *Factory
	root *lokt.Root
	opts *GuardOptions
	id   lokt.Identity
	self lokt.Holder
	path string // the resolved command

	lock     *lokt.Lock // nil until acquired
	released bool
	lost     bool // reported once, from whichever side sees it first

	cmd      *exec.Cmd
	waitDone chan struct{} // closed once cmd.Wait has returned (ProcessState is set)
	reaped   bool
	hb       *heartbeat
	// relayed is the first signal guard passed on to the child: guard then
	// exits 128+N, as the contract says.
	relayed syscall.Signal
}

func runGuard(ctx context.Context, f *Factory, opts *GuardOptions) (err error) {
	if err := lockfile.ValidateName(opts.Name); err != nil {
		return err
	}
	// Resolved before acquiring: a typo must not wait ten minutes for a lock
	// only to fail, nor take the lock from someone else for nothing.
	path, err := exec.LookPath(opts.Command[0])
	if err != nil {
		return startError(opts.Command[0], err)
	}
	root, err := f.Root(true)
	if err != nil {
		return err
	}
	// From here on every signal is ours to handle, so none can kill guard
	// between taking the lock and starting the child, or while it runs.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, relayedSignals...)
	defer signal.Stop(sigs)

	g := &guard{f: f, root: root, opts: opts, id: f.Identity(), self: lokt.Self(), path: path}
	defer func() {
		if p := recover(); p != nil {
			err = g.abort(p, debug.Stack())
		}
	}()
	if g.lock, err = g.acquire(ctx); err != nil {
		return err
	}
	return g.run(sigs)
}

// acquire takes the lock as lock does: timeout, interrupts, progress, and
// the nested-lock check.
func (g *guard) acquire(ctx context.Context) (*lokt.Lock, error) {
	ao := lokt.AcquireOptions{Identity: g.id, Holder: g.self, TTL: g.opts.TTL, Wait: g.opts.Wait}
	return acquire(ctx, g.f, g.root, g.opts.Name, ao, g.opts.Timeout, g.opts.Quiet)
}

// run starts the child with the lock held, supervises it, and releases.
func (g *guard) run(sigs <-chan os.Signal) error {
	select {
	case s := <-sigs: // arrived while acquiring: the child never starts
		g.release()
		return &exitError{code: 128 + signalNumber(s)}
	default:
	}
	g.cmd = &exec.Cmd{
		Path:        g.path,
		Args:        g.opts.Command,
		Env:         g.childEnv(),
		Stdin:       g.f.IO.In,
		Stdout:      g.f.IO.Out,
		Stderr:      g.f.IO.ErrOut,
		SysProcAttr: childSysProcAttr(),
	}
	// On Linux the child's parent-death signal fires when the OS thread that
	// forked it exits, not the process. Go only ends a thread when a
	// goroutine locked to it exits; keeping this goroutine locked until the
	// child is reaped keeps the forking thread alive and out of anyone
	// else's hands for exactly that long.
	g.waitDone = make(chan struct{}) // before Start: abort may wait on it
	runtime.LockOSThread()
	if err := g.cmd.Start(); err != nil {
		runtime.UnlockOSThread()
		g.cmd = nil
		g.release()
		return startError(g.opts.Command[0], err)
	}
	// Read before anyone can reap the child, so the pid cannot have been
	// reused. A child that already exited needs no co-holder.
	child, _ := lokt.ProcessHolder(g.cmd.Process.Pid)
	go func() {
		// Its error only repeats ProcessState, or reports output that could
		// not be copied, which nobody is left to tell.
		_ = g.cmd.Wait()
		close(g.waitDone)
	}()
	g.hb = g.startHeartbeat(child)

	g.supervise(sigs)
	runtime.UnlockOSThread()
	g.hb.stop()
	g.drainHeartbeat()
	g.release()
	if g.relayed != 0 {
		return &exitError{code: 128 + int(g.relayed)}
	}
	if code := exitStatus(g.cmd.ProcessState); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// supervise waits for the child, relaying signals and acting on a lost lock.
func (g *guard) supervise(sigs <-chan os.Signal) {
	var kill <-chan time.Time
	for {
		select {
		case <-g.waitDone:
			g.reaped = true
			return
		case s := <-sigs:
			if deliveredByTerminal(s) {
				continue // the child got it too; its own exit status tells what it did
			}
			if g.relayed == 0 {
				g.relayed = syscall.Signal(signalNumber(s))
			}
			_ = g.cmd.Process.Signal(s)
		case err := <-g.hb.lost:
			g.reportLost(err, true)
			if g.opts.KillOnLost && kill == nil {
				terminate(g.cmd.Process)
				kill = time.After(killGrace)
			}
		case msg := <-g.hb.notes:
			g.warnf("%s", msg)
		case <-kill:
			_ = g.cmd.Process.Kill()
		case pv := <-g.hb.panics:
			panic(pv) // recovered by runGuard, which stops the child and releases
		}
	}
}

// drainHeartbeat handles what the stopped heartbeat reported after the
// child exited.
func (g *guard) drainHeartbeat() {
	select {
	case err := <-g.hb.lost:
		g.reportLost(err, false)
	default:
	}
	select {
	case pv := <-g.hb.panics:
		panic(pv)
	default:
	}
}

// release gives the lock back if it is still this acquisition. Only the
// goroutine running runGuard calls it, after the heartbeat has stopped.
func (g *guard) release() {
	if g.lock == nil || g.released {
		return
	}
	g.released = true
	if g.lost {
		return
	}
	_, err := g.root.Release(context.Background(), g.opts.Name, lokt.ReleaseOptions{Identity: g.id, Holder: g.self, LockID: g.lock.LockID})
	switch {
	case err == nil:
	case errors.Is(err, lokt.ErrLost), errors.Is(err, lokt.ErrNotFound):
		g.reportLost(lostCause(g.opts.Name, err), g.cmd != nil && !g.reaped)
	default:
		g.warnf("could not release %q: %v\n  it counts as stale once this process has exited, and the next lock or guard takes it", g.opts.Name, err)
	}
}

// reportLost says once, loudly, that the lock stopped being ours, and
// records it in the audit log.
func (g *guard) reportLost(cause error, running bool) {
	if g.lost {
		return
	}
	g.lost = true
	g.root.Emit(lokt.Event{Type: lokt.EventLost, Name: g.opts.Name, Actor: lokt.Actor{Identity: g.id, Holder: g.self}, Lock: g.lock, Reason: cause.Error()})
	g.warnf("WARNING: %v", cause) // cause reads "lock lost: \"NAME\" ..."
	switch {
	case !running:
		g.warnf("WARNING: the command ran without the lock for part of its run")
	case g.opts.KillOnLost:
		g.warnf("WARNING: stopping the command (pid %d) as --kill-on-lost asks: SIGTERM now, SIGKILL in %s", g.cmd.Process.Pid, killGrace)
	default:
		g.warnf("WARNING: the command (pid %d) keeps running unprotected; another holder may run alongside it (--kill-on-lost would stop it)", g.cmd.Process.Pid)
	}
}

// abort cleans up after a panic in lokt itself: the child is stopped first,
// since releasing while it runs would let a second holder in beside it.
func (g *guard) abort(pv any, stack []byte) error {
	if g.cmd != nil && !g.reaped {
		terminate(g.cmd.Process)
		select {
		case <-g.waitDone:
		case <-time.After(killGrace):
			_ = g.cmd.Process.Kill()
			<-g.waitDone
		}
		g.reaped = true
	}
	if g.hb != nil {
		g.hb.stop()
	}
	g.release()
	return &exitError{code: ExitError, err: fmt.Errorf("internal error, please report it (the lock %q was released): %v\n%s", g.opts.Name, pv, stack)}
}

func (g *guard) childEnv() []string {
	env := os.Environ()
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != envLock && k != envLockID && k != envRoot {
			out = append(out, kv)
		}
	}
	return append(out, envLock+"="+g.opts.Name, envLockID+"="+g.lock.LockID, envRoot+"="+g.root.Dir())
}

func (g *guard) warnf(format string, args ...any) {
	fmt.Fprintf(g.f.IO.ErrOut, "lokt: "+format+"\n", args...)
}

// startError maps a command that cannot run to the shell's codes: 127 not
// found, 126 found but not executable. The advice is about the command:
// lokt's own files are not involved in either.
func startError(name string, err error) error {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		if errors.Is(err, exec.ErrNotFound) {
			err = errors.New("command not found")
		}
		err = fmt.Errorf("guard: %s: %w", name, err)
		if strings.ContainsAny(name, " \t") {
			// A whole shell line given as one word: guard runs CMD
			// directly, without a shell.
			err = fmt.Errorf("%w\n  guard runs CMD without a shell; for a shell command line use: lokt guard NAME -- sh -c '%s'", err, strings.ReplaceAll(name, "'", `'\''`))
		}
		return &exitError{code: 127, err: err}
	}
	return &exitError{code: 126, err: fmt.Errorf("guard: %s: cannot execute: %w\n  check that the command is an executable file (chmod +x %s) with a valid #! line, or run it through its interpreter (e.g. -- sh %s)", name, noPermAdvice{err}, name, name)}
}

// lostCause words a release that found no record as the lock lost, the
// text the docs show, rather than the bare "not found" the engine gives.
func lostCause(name string, err error) error {
	if errors.Is(err, lokt.ErrLost) {
		return err
	}
	return fmt.Errorf("%w: %q no longer exists (released or broken by someone else)", lokt.ErrLost, name)
}

// noPermAdvice hides a permission error's identity from errorText, whose
// advice about the lock root's permissions does not apply to CMD.
type noPermAdvice struct{ err error }

func (e noPermAdvice) Error() string { return e.err.Error() }

func signalNumber(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return 0
}

// heartbeat keeps the lock alive (and checks it is still ours) while the
// child runs. It reports to supervise through its channels and never
// blocks on them, so stop always returns.
type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
	lost   chan error
	notes  chan string
	panics chan any
}

func (hb *heartbeat) stop() {
	hb.cancel()
	<-hb.done
}

// startHeartbeat first records child as co-holder (so the lock outlives a
// SIGKILLed guard while the child lives), then renews every TTL/2, or
// without a TTL rereads the lock every verifyEvery.
func (g *guard) startHeartbeat(child lokt.Holder) *heartbeat {
	ctx, cancel := context.WithCancel(context.Background())
	hb := &heartbeat{cancel: cancel, done: make(chan struct{}), lost: make(chan error, 1), notes: make(chan string, 4), panics: make(chan any, 1)}
	interval := verifyEvery
	if g.opts.TTL > 0 {
		interval = max(g.opts.TTL/2, 10*time.Millisecond)
	}
	// After a failed renewal, retry well before the lock can expire.
	retry := max(min(interval/4, time.Second), 10*time.Millisecond)
	go func() {
		defer close(hb.done)
		defer func() {
			if pv := recover(); pv != nil {
				hb.panics <- fmt.Sprintf("%v (in the heartbeat)\n%s", pv, debug.Stack())
			}
		}()
		needChild := child.PID != 0
		wait := time.Duration(0)
		if !needChild {
			wait = interval
		}
		failing := false
		for {
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			err := g.beat(ctx, needChild, child)
			switch {
			case err == nil:
				needChild, failing, wait = false, false, interval
			case ctx.Err() != nil:
				return
			case isLostError(err):
				hb.lost <- err
				return
			default:
				if !failing {
					select {
					case hb.notes <- fmt.Sprintf("renewing %q failed, retrying: %v", g.opts.Name, err):
					default:
					}
				}
				failing, wait = true, retry
			}
		}
	}()
	return hb
}

// beat renews the lock (a compare-and-swap on its lock_id), or, with
// nothing to write, checks that the record still carries our lock_id.
func (g *guard) beat(ctx context.Context, needChild bool, child lokt.Holder) error {
	name, id := g.opts.Name, g.lock.LockID
	if g.opts.TTL > 0 || needChild {
		_, err := g.root.Renew(ctx, name, id, lokt.RenewOptions{Identity: g.id, Holder: g.self, TTL: g.opts.TTL, Child: child})
		return err
	}
	st, err := g.root.Get(context.Background(), name)
	switch {
	case errors.Is(err, lokt.ErrNotFound):
		return fmt.Errorf("%w: %q no longer exists (released or broken by someone else)", lokt.ErrLost, name)
	case err != nil:
		return err
	case st.Lock == nil:
		return st.Problem
	case st.Lock.LockID != id:
		l := st.Lock
		return fmt.Errorf("%w: %q now belongs to %s pid %d (lock_id %s)", lokt.ErrLost, name, holderText(l), l.PID, l.LockID)
	}
	return nil
}

// isLostError: the record is not our acquisition any more, or can no longer
// be proven to be (damaged, or rewritten by a newer lokt).
func isLostError(err error) bool {
	var corrupt *lokt.CorruptError
	var newer *lokt.UnsupportedVersionError
	return errors.Is(err, lokt.ErrLost) || errors.As(err, &corrupt) || errors.As(err, &newer)
}
