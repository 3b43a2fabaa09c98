// Package cli is lokt's command line: one file per command, each parsing its
// flags into an options struct and handing it to a run function that works
// against the injected Factory (streams, environment, lock root). All lock
// semantics live in package lokt.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/store"
)

// Exit codes of the contract.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitHeld     = 2
	ExitNotFound = 3
	ExitNotOwner = 4
)

// ExitError carries an exit code chosen by a command. Msg, if set, is
// printed instead of the wrapped error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// silentExit ends with code and prints nothing (exists, why's verdicts).
func silentExit(code int) error { return &exitError{code: code} }

// usageError marks bad input: exit 1 with the message.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitError, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error from a command to the contract's exit codes.
func exitCode(err error) int {
	var ee *exitError
	var held *lokt.HeldError
	var frozen *lokt.FrozenError
	var notOwner *lokt.NotOwnerError
	var freezeOwner *lokt.FreezeOwnerError
	var liveHolder *lokt.LiveHolderError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &held), errors.As(err, &frozen):
		return ExitHeld
	case errors.Is(err, lokt.ErrNotFound):
		return ExitNotFound
	case errors.As(err, &notOwner), errors.As(err, &liveHolder), errors.As(err, &freezeOwner):
		return ExitNotOwner
	}
	return ExitError
}

// Main runs lokt with args on the process's streams and returns the exit code.
func Main(args []string) int {
	// lokt waits on files and processes; it never computes in parallel. With
	// one P the runtime stops waking spare threads to look for work each
	// time a goroutine is readied, which saves an uncontended guard about
	// half a millisecond and a dozen context switches (docs/performance.md).
	// A GOMAXPROCS the user sets still rules.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if slim && needsFull(args, os.Getenv) {
		err := handOver(args) // returns only if the exec failed
		fmt.Fprintf(os.Stderr, "lokt: %v\n", err)
		return ExitError
	}
	f := NewFactory(SystemIO())
	f.exits = true
	return Run(f, args)
}

// Run runs lokt with args against f and returns the exit code.
func Run(f *Factory, args []string) int {
	cmd := NewRootCmd(f)
	cmd.SetArgs(args)
	// A context from the start, so run functions never see a nil one.
	err := cmd.ExecuteContext(context.Background())
	if f.etcd != nil {
		_ = f.etcd.Close() // the etcd client's connections and goroutines
	}
	if err != nil && err.Error() != "" {
		fmt.Fprintf(f.IO.ErrOut, "lokt: %s\n", errorText(err))
	}
	return exitCode(err)
}

// errorText adds what to do next for the errors people hit most, and makes
// the message safe for a terminal (see printableError).
func errorText(err error) string {
	var held *lokt.HeldError
	var frozen *lokt.FrozenError
	var notOwner *lokt.NotOwnerError
	var liveHolder *lokt.LiveHolderError
	var timeout *lokt.TimeoutError
	var freezeOwner *lokt.FreezeOwnerError
	msg := err.Error()
	switch {
	case errors.Is(err, lockfile.ErrInvalidName):
	case errors.Is(err, store.ErrUnavailable):
		msg += "\n  nothing was changed that lokt knows of; check the endpoints and the cluster's health (lokt doctor), then retry"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		msg += "\n  the lock root's filesystem is full (or over quota): free space there and retry; no lock was changed"
	case errors.Is(err, syscall.EROFS):
		msg += "\n  the lock root is on a read-only filesystem: set LOKT_ROOT to a writable directory"
	case errors.Is(err, fs.ErrPermission):
		msg += "\n  check the permissions of the lock root (lokt doctor explains), or set LOKT_ROOT to a directory you can write"
	case errors.As(err, &notOwner) && notOwner.State.Stale():
		msg += fmt.Sprintf("\n  it is %s, so anyone may remove it: lokt unlock %s --break-stale", notOwner.State, notOwner.Lock.Name)
	case errors.As(err, &notOwner):
		msg += fmt.Sprintf("\n  to release it anyway: lokt unlock %s --force (break-glass; recorded in the audit log)", notOwner.Lock.Name)
	case errors.As(err, &freezeOwner):
		msg += fmt.Sprintf("\n  to replace it anyway: add --force (recorded in the audit log); to see it: lokt status %s", freezeOwner.Freeze.Name)
	case errors.As(err, &liveHolder):
		msg += liveHolderAdvice(liveHolder)
	case errors.As(err, &timeout) && errors.As(err, &held):
		msg += fmt.Sprintf("\n  to wait longer: raise --timeout (0 waits without limit); to see more: lokt why %s", held.Lock.Name)
	case errors.As(err, &timeout) && errors.As(err, &frozen):
		msg += fmt.Sprintf("\n  to wait longer: raise --timeout; to lift the freeze: lokt unfreeze %s", frozen.Freeze.Name)
	case errors.As(err, &held):
		msg += fmt.Sprintf("\n  to wait for it: add --wait; to see more: lokt why %s", held.Lock.Name)
	case errors.As(err, &frozen):
		msg += fmt.Sprintf("\n  to wait until it ends: add --wait; to lift it: lokt unfreeze %s", frozen.Freeze.Name)
	}
	return printableError(err, msg)
}

// liveHolderAdvice says who blocks an unlock and how to go on.
func liveHolderAdvice(e *lokt.LiveHolderError) string {
	name := e.Lock.Name
	switch {
	case e.Foreign != "" && e.Leased:
		return fmt.Sprintf("\n  its holder is %s and keeps the lock on a lease: unlock it from the holder there, or wait until the holder stops (the lock ends with its lease); to release it anyway: lokt unlock %s --force (break-glass; recorded in the audit log)", e.Foreign, name)
	case e.Foreign != "":
		return fmt.Sprintf("\n  its holder is %s: unlock it from the holder there, or let its TTL run out; to release it anyway: lokt unlock %s --force (break-glass; recorded in the audit log)", e.Foreign, name)
	}
	who := fmt.Sprintf("pid %d", e.Lock.PID)
	if cmd := processName(e.Lock.PID); cmd != "" {
		who += " (" + printable(cmd) + ")"
	}
	return fmt.Sprintf("\n  only its holder releases it: %s still runs, and it is neither the process that ran this unlock nor one of its ancestors"+
		"\n  let it finish, or to release it anyway: lokt unlock %s --force (break-glass; recorded in the audit log)", who, name)
}

// printableError makes an error message safe for a terminal. Engine errors
// carry labels other users chose (owner, agent id, host, freeze reason)
// verbatim; each is escaped whole first, so that not even a newline in one
// can pass for a line of lokt's message, and then every line of the message
// is escaped, keeping the line breaks lokt put there.
func printableError(err error, msg string) string {
	for _, label := range errorLabels(err) {
		if p := printable(label); p != label {
			msg = strings.ReplaceAll(msg, label, p)
		}
	}
	return printableLines(msg)
}

// errorLabels are the labels of the locks and freezes err is about.
func errorLabels(err error) []string {
	var out []string
	addLock := func(l *lokt.Lock) {
		if l != nil {
			out = append(out, l.Owner, l.AgentID, l.Host)
		}
	}
	var held *lokt.HeldError
	var notOwner *lokt.NotOwnerError
	var liveHolder *lokt.LiveHolderError
	var frozen *lokt.FrozenError
	if errors.As(err, &held) {
		addLock(held.Lock)
	}
	if errors.As(err, &notOwner) {
		addLock(notOwner.Lock)
		out = append(out, notOwner.Caller)
	}
	if errors.As(err, &liveHolder) {
		addLock(liveHolder.Lock)
	}
	if errors.As(err, &frozen) && frozen.Freeze != nil {
		fr := frozen.Freeze
		out = append(out, fr.Owner, fr.AgentID, fr.Host, fr.Reason)
	}
	return out
}

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "lokt",
		Short: "Zero-infrastructure locks for scripts, CI jobs and agents sharing a machine",
		Long: `lokt coordinates processes that share one machine or one filesystem.
Wrap risky work in "lokt guard NAME -- CMD" and only one holder runs it at a time.

Exit codes: 0 ok, 1 error, 2 held/frozen/timed out, 3 not found, 4 not the owner.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Bad flags are bad input: exit 1 with cobra's message.
		// Version gives --version, printed as `lokt version` prints.
		Version: versionLine(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: ExitError, err: err}
	})
	root.PersistentFlags().StringVar(&f.Backend, "backend", "", "where locks live: etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (default $LOKT_BACKEND, else files in the lock root)")
	root.AddCommand(
		newCmdLock(f, nil),
		newCmdUnlock(f, nil),
		newCmdStatus(f, nil),
		newCmdExists(f, nil),
		newCmdWhy(f, nil),
		newCmdVersion(f, nil),
		newCmdGuard(f, nil),
		newCmdFreeze(f, nil),
		newCmdUnfreeze(f, nil),
		newCmdAudit(f, nil),
		newCmdDoctor(f, nil),
		newCmdMCP(f, nil),
	)
	return root
}

// exactlyOneName is cobra's ExactArgs(1) with a message that names the
// missing argument instead of counting.
func exactlyOneName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError("%s needs exactly one lock NAME (got %d arguments); usage: %s", cmd.Name(), len(args), cmd.UseLine())
	}
	return nil
}
