package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/lokt-dev/lokt"
)

// Factory is what commands get from the outside world. Tests replace its
// fields; NewFactory wires the real process.
type Factory struct {
	IO     *IOStreams
	Getenv func(string) string
	Getwd  func() (string, error)
	// CallerPID is the process `lock` holds on behalf of: lokt's parent.
	CallerPID func() int
	// Observer, if set, returns the event sink for a root (the audit log).
	Observer func(root string, io *IOStreams) func(lokt.Event)

	root *lokt.Root
	loc  lokt.Location
}

// NewFactory returns a Factory for the real process.
func NewFactory(io *IOStreams) *Factory {
	return &Factory{
		IO:        io,
		Getenv:    os.Getenv,
		Getwd:     os.Getwd,
		CallerPID: os.Getppid,
		Observer:  defaultObserver,
	}
}

// defaultObserver records every event in the root's audit log (audit_hook.go).
var defaultObserver = auditObserver

// errNoRoot means the lock root does not exist yet, for read-only commands
// that must not create it.
var errNoRoot = errors.New("lock root does not exist yet")

// Location finds the lock root without touching it.
func (f *Factory) Location() (lokt.Location, error) {
	if f.loc.Dir != "" {
		return f.loc, nil
	}
	cwd, err := f.Getwd()
	if err != nil {
		return lokt.Location{}, fmt.Errorf("cannot determine the current directory: %w", err)
	}
	loc, err := lokt.Locate(cwd, f.Getenv)
	if err != nil {
		return lokt.Location{}, fmt.Errorf("cannot choose a lock root: %w", err)
	}
	f.loc = loc
	return loc, nil
}

// Root opens the lock root. With create false, a root that does not exist
// yet gives errNoRoot instead of being made (status and friends only read).
func (f *Factory) Root(create bool) (*lokt.Root, error) {
	if f.root != nil {
		return f.root, nil
	}
	loc, err := f.Location()
	if err != nil {
		return nil, err
	}
	if !create {
		if _, err := os.Lstat(loc.Dir); errors.Is(err, fs.ErrNotExist) {
			return nil, errNoRoot
		}
	} else if err := requireLocalFS(f.Getenv, loc.Dir); err != nil {
		return nil, err
	}
	var opts []lokt.Option
	if f.Observer != nil {
		if obs := f.Observer(loc.Dir, f.IO); obs != nil {
			opts = append(opts, lokt.WithObserver(obs))
		}
	}
	r, err := lokt.Open(loc.Dir, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w\n  (lock root chosen by %s: %s; set LOKT_ROOT to a writable directory to use another)", err, loc.Source, loc.Reason)
	}
	f.root = r
	return r, nil
}

// Identity is the caller's owner label and agent id.
func (f *Factory) Identity() lokt.Identity { return lokt.DefaultIdentity(f.Getenv) }

// Caller is the holder `lock` acts for: the process that ran lokt.
func (f *Factory) Caller() lokt.Holder {
	h, err := lokt.ProcessHolder(f.CallerPID())
	if err != nil {
		return lokt.Holder{Host: lokt.Self().Host, PID: f.CallerPID()}
	}
	return h
}

// parseTTL reads a duration flag that must be positive when given.
func parseDuration(flag, value string, allowZero bool) (time.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, usageError("--%s %q is not a duration; use Go syntax such as 90s, 5m or 1h30m", flag, value)
	}
	if d < 0 || (d == 0 && !allowZero) {
		return 0, usageError("--%s must be positive (got %s); use Go syntax such as 90s, 5m or 1h30m", flag, value)
	}
	return d, nil
}
