package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/backend"
	"github.com/lokt-dev/lokt/internal/rootdir"
	"github.com/lokt-dev/lokt/store"
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
	// EtcdObserver is Observer for a root on etcd (the shared audit trail).
	EtcdObserver func(s store.Store, io *IOStreams) func(lokt.Event)

	// Backend is the --backend flag; empty means $LOKT_BACKEND, and that
	// empty means the file backend.
	Backend string

	root  *lokt.Root
	loc   lokt.Location
	spec  *backend.Spec
	specd bool
	etcd  interface{ Close() error } // the etcd client, once connected

	// exits is set when the process ends right after Run (Main): what a
	// command set up for the process, such as signal handlers, need not be
	// undone. Undoing guard's costs it three hand-overs to the runtime's
	// signal thread, 0.1 to 0.2 ms (docs/performance.md).
	exits bool
}

// NewFactory returns a Factory for the real process.
func NewFactory(io *IOStreams) *Factory {
	return &Factory{
		IO:           io,
		Getenv:       os.Getenv,
		Getwd:        os.Getwd,
		CallerPID:    os.Getppid,
		Observer:     defaultObserver,
		EtcdObserver: etcdAuditObserver,
	}
}

// defaultObserver records every event in the root's audit log (audit_hook.go).
var defaultObserver = auditObserver

// errNoRoot means the lock root does not exist yet, for read-only commands
// that must not create it.
var errNoRoot = errors.New("lock root does not exist yet")

// etcdSpec is the etcd backend chosen by --backend or $LOKT_BACKEND, nil
// for the file backend.
func (f *Factory) etcdSpec() (*backend.Spec, error) {
	if f.specd {
		return f.spec, nil
	}
	raw, from := f.Backend, "--backend"
	if raw == "" {
		raw, from = f.Getenv(backend.EnvBackend), backend.EnvBackend
	}
	sp, err := backend.Parse(raw)
	if err != nil {
		return nil, usageError("%s: %s", from, err)
	}
	f.spec, f.specd = sp, true
	if sp != nil {
		f.loc = lokt.Location{Dir: sp.String(), Source: from, Reason: "etcd backend chosen by " + from}
	}
	return sp, nil
}

// Location finds the lock root without touching it.
func (f *Factory) Location() (lokt.Location, error) {
	if f.loc.Dir != "" {
		return f.loc, nil
	}
	if sp, err := f.etcdSpec(); err != nil || sp != nil {
		return f.loc, err
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
	if f.spec != nil {
		return f.etcdRoot(loc)
	}
	if !create {
		if _, err := os.Lstat(loc.Dir); errors.Is(err, fs.ErrNotExist) {
			return nil, errNoRoot
		}
	} else {
		if err := makeUserRoot(loc); err != nil {
			return nil, err
		}
		if err := requireLocalFS(f.Getenv, loc.Dir); err != nil {
			return nil, err
		}
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

// IsEtcd reports whether the chosen backend is etcd (bad backend URLs are
// reported by Location and Root; here they count as not etcd).
func (f *Factory) IsEtcd() bool {
	sp, err := f.etcdSpec()
	return err == nil && sp != nil
}

// makeUserRoot creates the per-user root, and the state directories above
// it, private to the user (as the XDG rules ask): it records which commands
// this user ran and when, and no other user shares it.
func makeUserRoot(loc lokt.Location) error {
	if loc.Source != string(rootdir.SourceUser) {
		return nil
	}
	if err := os.MkdirAll(loc.Dir, 0o700); err != nil {
		return fmt.Errorf("cannot create the per-user lock root: %w\n  (%s; set LOKT_ROOT to an absolute, writable directory to use another)", err, loc.Reason)
	}
	return nil
}

// Identity is the caller's owner label and agent id.
func (f *Factory) Identity() lokt.Identity { return lokt.DefaultIdentity(f.Getenv) }

// EnvHolderPID names the process `lock` holds on behalf of, instead of
// lokt's parent. A harness exports it once (its own pid, or its job's), so
// that every lock its short-lived shells take lives exactly as long as it.
const EnvHolderPID = "LOKT_HOLDER_PID"

// Caller is the holder `lock` acts for and other commands act as: the
// process named by $LOKT_HOLDER_PID when that is set and valid, else the
// process that ran lokt.
func (f *Factory) Caller() lokt.Holder {
	if h, ok, err := f.envHolder(); ok && err == nil {
		return h
	}
	h, err := lokt.ProcessHolder(f.CallerPID())
	if err != nil {
		return lokt.Holder{Host: lokt.Self().Host, PID: f.CallerPID()}
	}
	return h
}

// envHolder reads $LOKT_HOLDER_PID: ok is false when it is unset; err says
// why a set value cannot be used (not a pid, or no such process).
func (f *Factory) envHolder() (h lokt.Holder, ok bool, err error) {
	v := f.Getenv(EnvHolderPID)
	if v == "" {
		return lokt.Holder{}, false, nil
	}
	pid, perr := strconv.Atoi(v)
	if perr != nil || pid <= 0 {
		return lokt.Holder{}, true, usageError("$%s is %q, which is not a process id\n  export it as the pid of the process the lock should live as long as, e.g. %s=$$ in the harness's own shell, or unset it", EnvHolderPID, v, EnvHolderPID)
	}
	h, err = lokt.ProcessHolder(pid)
	if err != nil {
		return lokt.Holder{}, true, usageError("$%s is %d, but no process %d is running, so a lock held for it would be stale at once\n  export the pid of a process that outlives the lock (the agent or job itself), or unset it", EnvHolderPID, pid, pid)
	}
	return h, true, nil
}

// parseDuration reads a duration flag that must be positive when given
// (or zero, with allowZero).
func parseDuration(flag, value string, allowZero bool) (time.Duration, error) {
	d, err := parseDurationText(value)
	if err != nil {
		return 0, usageError("--%s %q is not a duration; use Go syntax such as 90s, 5m, 1h30m, or d for days (2d, 1d12h)", flag, value)
	}
	if d < 0 || (d == 0 && !allowZero) {
		return 0, usageError("--%s must be positive (got %s); use Go syntax such as 90s, 5m, 1h30m or 2d", flag, value)
	}
	return d, nil
}

// parseDurationText is time.ParseDuration plus a leading count of days
// ("2d", "1d12h", "4166d16h"), since lokt prints long durations that way
// and a duration it prints must be one it accepts. A day is 24 hours.
func parseDurationText(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 32)
	if err != nil || n > maxDays {
		return 0, fmt.Errorf("time: invalid duration %q", s)
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest == "" {
		return d, nil
	}
	r, err := time.ParseDuration(rest)
	if err != nil || r < 0 || r > math.MaxInt64-d {
		return 0, fmt.Errorf("time: invalid duration %q", s)
	}
	return d + r, nil
}

// maxDays keeps a count of days within time.Duration's range (about 292
// years).
const maxDays = 100000

// formatDuration prints d exactly, without Duration.String's trailing zero
// units: 2.5s, 10m, 1h30m, 2d.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	var days string
	if d >= 24*time.Hour {
		days = strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
		d %= 24 * time.Hour
		if d == 0 {
			return days
		}
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return days + s
}
