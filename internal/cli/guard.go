package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/backend"
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
	// Slots (1..lokt.MaxSlots) or Shared hold NAME alongside others.
	Slots  int
	Shared bool
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
	envToken  = "LOKT_TOKEN"
	// envHoldFD names the descriptor that keeps the lock held while any
	// process that inherited it runs.
	envHoldFD = "LOKT_HOLD_FD"
)

const (
	// killGrace is how long a child gets between SIGTERM and SIGKILL when
	// guard stops it (--kill-on-lost, or an internal error).
	killGrace = 10 * time.Second
	// maxAncestry bounds the walk up the process tree.
	maxAncestry = 64
)

func newCmdGuard(f *Factory, runF func(*GuardOptions) error) *cobra.Command {
	opts := &GuardOptions{}
	var ttl, timeout, slots string
	cmd := &cobra.Command{
		Use:   "guard NAME [flags] -- CMD [ARGS...]",
		Short: "Hold NAME while CMD runs, and release it on every exit path",
		Long: `Acquire the lock NAME, run CMD with your stdin, stdout and stderr, and release
the lock when CMD ends, however it ends. guard exits with CMD's exit code
(128+N if CMD was killed by signal N, 127 if CMD was not found, 126 if it could
not be executed) and prints nothing on stdout of its own.

The lock protects CMD's whole process tree: it stays held while any process
started under CMD runs (one that kept descriptor 3, or one still in CMD's
process group), even if guard is killed outright, and it is free at once when
none does. If CMD exits but leaves processes running, guard says so and exits
with CMD's code; the lock is free once they exit. To leave something running
without the lock, detach it: setsid CMD 3>&- (new session, descriptor closed).
See docs/protocol.md, "Holder evidence", for the rule and its limits.

SIGINT, SIGTERM and SIGHUP sent to guard are passed to CMD (to its process
group); guard waits for it, releases the lock and exits 128+N.

CMD sees LOKT_LOCK, LOKT_LOCK_ID, LOKT_TOKEN (the fencing token), LOKT_ROOT
and LOKT_HOLD_FD in its environment.

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
			if opts.Slots, err = slotsFlag(cmd, slots, opts.Shared); err != nil {
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
	addSlotFlags(cmd, &slots, &opts.Shared)
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

// guard is one run of `lokt guard`: the lock it holds and the command it
// protects. Its fields are only touched by the goroutine running runGuard.
type guard struct {
	f    *Factory
	root *lokt.Root
	opts *GuardOptions
	id   lokt.Identity
	self lokt.Holder
	path string // the resolved command

	held *lokt.Held // nil until acquired
	lost bool       // reported once, from whichever side sees it first

	child    *child
	tree     *tree         // how the command's processes are grouped
	waitDone chan struct{} // closed once child.wait has returned (the command is reaped)
	reaped   bool
	trouble  chan error // renewal failures that may pass, from the keeping goroutine
	// relayed is the first signal guard passed on to the command: guard
	// then exits 128+N, as the contract says.
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
	if !f.exits {
		defer signal.Stop(sigs)
	}

	g := &guard{f: f, root: root, opts: opts, id: f.Identity(), self: lokt.Self(), path: path, trouble: make(chan error, 1)}
	defer func() {
		if p := recover(); p != nil {
			err = g.abort(p, debug.Stack())
		}
	}()
	if g.held, err = g.acquire(ctx); err != nil {
		return err
	}
	return g.run(sigs)
}

// acquire takes and keeps the lock, waiting as lock does: timeout,
// interrupts, progress, and the nested-lock check.
func (g *guard) acquire(ctx context.Context) (*lokt.Held, error) {
	ho := lokt.HoldOptions{
		AcquireOptions: lokt.AcquireOptions{Identity: g.id, Holder: g.self, TTL: g.opts.TTL, Wait: g.opts.Wait, Slots: g.opts.Slots, Shared: g.opts.Shared},
		OnTrouble: func(err error) {
			select {
			case g.trouble <- err:
			default:
			}
		},
	}
	return waitFor(ctx, g.f, g.root, g.opts.Name, &ho.AcquireOptions, g.opts.Timeout, g.opts.Quiet, func(ctx context.Context) (*lokt.Held, error) {
		return g.root.Hold(ctx, g.opts.Name, ho)
	})
}

// run starts the command with the lock held, supervises it, and releases.
func (g *guard) run(sigs <-chan os.Signal) error {
	select {
	case s := <-sigs: // arrived while acquiring: the command never starts
		g.release()
		return &exitError{code: 128 + signalNumber(s)}
	default:
	}
	g.tree = newTree()
	// On Linux the child's parent-death signal fires when the OS thread that
	// forked it exits, not the process. Go ends a thread only when a
	// goroutine locked to it exits, and no goroutine in lokt does (the
	// runtime's signal-mask goroutine locks one and never exits), so any
	// thread lives as long as guard. Locking this goroutine to its thread
	// would instead make each wake-up below a hand-over between threads.
	g.waitDone = make(chan struct{}) // before Start: abort may wait on it
	// The holder's evidence is inherited by the whole tree, as fd 3.
	c, err := startChild(g.path, g.opts.Command, g.childEnv(), g.f.IO, g.held.Files(), g.tree.sysProcAttr())
	if err != nil {
		g.release()
		return startError(g.opts.Command[0], err)
	}
	g.child = c
	pid := c.pid
	g.tree.started(pid)
	if g.tree.group() != 0 {
		// Noted first, microseconds after the fork, while the command is
		// still being exec'd: should guard be killed now, whatever the
		// command starts is in this group. Its start follows below.
		_ = g.held.SetTree(context.Background(), lokt.Holder{}, g.tree.group())
	}
	// Read before the child can be reaped, so its pid cannot have been
	// reused by then. A command that has already exited (a launcher that
	// only started background jobs) gives no start, but its process group
	// is recorded all the same: the jobs it left in it keep the lock.
	child, err := lokt.ProcessHolder(pid)
	if err != nil {
		child = lokt.Holder{}
	}
	go func() {
		c.wait()
		close(g.waitDone)
	}()
	// Recorded so the lock outlives a SIGKILLed guard, and a command that
	// exits first, while any process of the command's group lives; the
	// command already runs, so this write overlaps with it.
	if child.PID != 0 || g.tree.group() != 0 {
		if err := g.held.SetTree(context.Background(), child, g.tree.group()); err != nil && !errors.Is(err, lokt.ErrLost) {
			g.warnf("could not record the command's processes in %q: %v", g.opts.Name, err)
		}
	}

	g.supervise(sigs)
	g.release()
	if g.relayed != 0 {
		return &exitError{code: 128 + int(g.relayed)}
	}
	if code := c.exitCode(); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// supervise waits for the command, relaying signals and acting on a lost
// lock.
func (g *guard) supervise(sigs <-chan os.Signal) {
	var kill <-chan time.Time
	lost := g.held.Done()
	for {
		select {
		case <-g.waitDone:
			g.reaped = true
			return
		case s := <-sigs:
			if g.tree.deliveredByTerminal(s) {
				continue // the command got it too; its own exit status tells what it did
			}
			if g.relayed == 0 {
				g.relayed = syscall.Signal(signalNumber(s))
			}
			g.tree.signal(g.child, s)
		case <-lost:
			lost = nil
			if g.opts.KillOnLost && kill == nil {
				g.tree.terminate(g.child)
				kill = time.After(killGrace)
			}
			g.reportLost(g.held.Err(), true)
		case err := <-g.trouble:
			g.warnf("renewing %q failed, retrying: %v", g.opts.Name, err)
		case <-kill:
			g.tree.kill(g.child)
		}
	}
}

// release gives the lock back, unless processes the command started still
// run: the lock then stays theirs until they exit.
func (g *guard) release() {
	if g.held == nil {
		return
	}
	err := g.held.Release(context.Background())
	var still *lokt.StillHeldError
	var outlived *lokt.OutlivedError
	switch {
	case err == nil:
	case errors.As(err, &still):
		g.warnf("%v\n  (processes that should outlive the lock must close descriptor %s and leave the process group, e.g. setsid CMD %s>&-)", still, holdFD, holdFD)
	case errors.As(err, &outlived):
		g.warnf("WARNING: %v\n  (on this backend the lock lasts as long as guard: have CMD wait for the work it starts)", outlived)
	case errors.Is(err, lokt.ErrLost), errors.Is(err, lokt.ErrNotFound):
		g.reportLost(lostCause(g.opts.Name, err), g.child != nil && !g.reaped)
	default:
		g.warnf("could not release %q: %v\n  it counts as stale once this process and its command have exited, and the next lock or guard takes it", g.opts.Name, err)
	}
}

// reportLost says once, loudly, that the lock stopped being ours, and
// records it in the audit log.
func (g *guard) reportLost(cause error, running bool) {
	if g.lost {
		return
	}
	g.lost = true
	g.warnf("WARNING: %v", cause) // cause reads "lock lost: \"NAME\" ..."
	switch {
	case !running:
		g.warnf("WARNING: the command ran without the lock for part of its run")
	case g.opts.KillOnLost:
		g.warnf("WARNING: stopping the command (pid %d) as --kill-on-lost asks: SIGTERM now, SIGKILL in %s", g.child.pid, killGrace)
	default:
		g.warnf("WARNING: the command (pid %d) keeps running unprotected; another holder may run alongside it (--kill-on-lost would stop it)", g.child.pid)
	}
	// Said and acted on first: the audit trail may sit behind the same
	// outage that cost the lease (up to the store's request timeout).
	g.root.Emit(lokt.Event{Type: lokt.EventLost, Name: g.opts.Name, Actor: lokt.Actor{Identity: g.id, Holder: g.self}, Lock: g.held.Lock(), Reason: cause.Error()})
}

// abort cleans up after a panic in lokt itself: the command is stopped
// first, since releasing while it runs would let a second holder in.
func (g *guard) abort(pv any, stack []byte) error {
	if g.child != nil && !g.reaped {
		g.tree.terminate(g.child)
		select {
		case <-g.waitDone:
		case <-time.After(killGrace):
			g.tree.kill(g.child)
			<-g.waitDone
		}
		g.reaped = true
	}
	g.release()
	return &exitError{code: ExitError, err: fmt.Errorf("internal error, please report it (the lock %q was released): %v\n%s", g.opts.Name, pv, stack)}
}

// holdFD is the descriptor the command inherits the lock's evidence on:
// the first of the extra files startChild passes on.
const holdFD = "3"

func (g *guard) childEnv() []string {
	env := os.Environ()
	out := make([]string, 0, len(env)+5)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != envLock && k != envLockID && k != envRoot && k != envToken && k != envHoldFD && k != backend.EnvBackend {
			out = append(out, kv)
		}
	}
	l := g.held.Lock()
	where := envRoot + "=" + g.root.Dir()
	if g.f.IsEtcd() {
		// The root is no directory: CMD's own lokt calls find the same
		// cluster through LOKT_BACKEND (which --backend may have set).
		where = backend.EnvBackend + "=" + g.root.Dir()
	}
	out = append(out, envLock+"="+g.opts.Name, envLockID+"="+l.LockID, where,
		envToken+"="+strconv.FormatUint(l.Token, 10))
	if len(g.held.Files()) > 0 {
		out = append(out, envHoldFD+"="+holdFD)
	}
	return out
}

func (g *guard) warnf(format string, args ...any) {
	textf(g.f.IO.ErrOut, "lokt: "+format+"\n", args...)
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
