// Package doctor checks a lokt set-up: which lock root is used and why,
// whether it is usable, what kind of filesystem it is on, whether the clock
// and permissions are sane, and what a crash or a newer lokt left behind.
//
// doctor only reads. Its round trip and clock probe use files of its own
// (".doctor-<random>"), which no lock name can collide with, and it never
// opens a lock for writing: a lock root in use is safe to examine.
package doctor

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/rootdir"
	"github.com/lokt-dev/lokt/internal/version"
)

// Status is a check's verdict.
type Status string

// The verdicts. Only Fail makes `lokt doctor` exit 1.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one finding. Name is stable (scripts match on it); Remedy says
// what to do and is empty when nothing needs doing.
type Check struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	Remedy  string `json:"remedy"`
}

// Report is the result of Run, in the shape of `lokt doctor --json`.
type Report struct {
	ProtocolVersion int     `json:"protocol_version"`
	Root            string  `json:"root"`
	RootSource      string  `json:"root_source"`
	RootReason      string  `json:"root_reason"`
	Checks          []Check `json:"checks"`
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return r.Count(Fail) > 0 }

// Count returns how many checks have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Options are the outside world doctor looks at. Zero fields get the real
// thing; tests replace them.
type Options struct {
	// Locate chooses the lock root, as every other command would.
	Locate func() (lokt.Location, error)
	// Getenv reads LOKT_REQUIRE_LOCAL_FS and the audit settings.
	Getenv func(string) string
	// Now is the wall clock compared with file timestamps.
	Now func() time.Time
	// Writable reports whether this process may create entries in dir
	// (access(2) on unix).
	Writable func(dir string) error
}

// Check names, in report order.
const (
	CheckRoot        = "root"
	CheckRootDir     = "root-dir"
	CheckLocksDir    = "locks-dir"
	CheckFreezesDir  = "freezes-dir"
	CheckRootPerms   = "root-permissions"
	CheckFilesystem  = "filesystem"
	CheckRoundTrip   = "round-trip"
	CheckClock       = "clock"
	CheckAuditLog    = "audit-log"
	CheckUnsupported = "unsupported-records"
	CheckCorrupt     = "corrupt-records"
	CheckStale       = "stale-locks"
	CheckGuardFiles  = "guard-files"
	CheckTempFiles   = "temp-files"
	CheckPlatform    = "platform"
)

const (
	// probePrefix starts the name of every file doctor creates.
	probePrefix = ".doctor-"
	// leftoverTempMinimum is the age from which a temporary file counts as
	// left by a crash: no write keeps one for more than an instant.
	leftoverTempMinimum = time.Minute
)

// Run performs every check and returns the report. It never fails as a
// whole: a problem is a check with status fail.
func Run(opts Options) *Report {
	d := &doctor{opts: opts}
	if d.opts.Getenv == nil {
		d.opts.Getenv = func(string) string { return "" }
	}
	if d.opts.Now == nil {
		d.opts.Now = time.Now
	}
	if d.opts.Writable == nil {
		d.opts.Writable = writable
	}
	rep := &Report{ProtocolVersion: version.Protocol, Checks: []Check{}}
	d.rep = rep
	loc, err := opts.Locate()
	if err != nil {
		d.add(CheckRoot, fail(err.Error(), "follow the advice above, or set LOKT_ROOT to the absolute path of the directory that should hold the locks"))
		d.add(CheckPlatform, d.platform())
		return rep
	}
	rep.Root, rep.RootSource, rep.RootReason = loc.Dir, loc.Source, loc.Reason
	d.loc = loc
	d.checkLocation()
	d.checkDirs()
	d.load()
	d.add(CheckRootPerms, d.rootPermissions())
	d.add(CheckFilesystem, d.filesystem())
	d.add(CheckRoundTrip, d.roundTrip())
	d.add(CheckClock, d.clock())
	d.add(CheckAuditLog, d.auditLog())
	d.checkRecords()
	d.add(CheckGuardFiles, d.guardFiles())
	d.add(CheckTempFiles, d.tempFiles())
	d.add(CheckPlatform, d.platform())
	return rep
}

type doctor struct {
	opts Options
	rep  *Report
	loc  lokt.Location
	// ready is true when the root and both namespace directories exist as
	// real directories: only then is anything inside them examined.
	ready bool
	// rootBroken is true when the root exists but is not a usable directory.
	rootBroken bool
	// statuses are the judged locks, read once for every records check.
	statuses []*lokt.Status
	recs     records
}

// verdict is what one check function returns.
type verdict struct {
	status  Status
	message string
	remedy  string
}

func ok(format string, args ...any) verdict {
	return verdict{status: OK, message: fmt.Sprintf(format, args...)}
}

func warn(message, remedy string) verdict { return verdict{Warn, message, remedy} }

func fail(message, remedy string) verdict { return verdict{Fail, message, remedy} }

func (d *doctor) add(name string, v verdict) {
	d.rep.Checks = append(d.rep.Checks, Check{Name: name, Status: v.status, Message: v.message, Remedy: v.remedy})
}

func (d *doctor) checkLocation() {
	msg := fmt.Sprintf("%s (chosen by %s: %s)", d.loc.Dir, d.loc.Source, d.loc.Reason)
	if d.loc.Source == string(rootdir.SourceUser) {
		// Not a problem: one user's jobs meet here wherever they start. Say
		// who does not, so nobody expects another account to coordinate.
		msg += "; every process of this user outside git and outside a .lokt tree shares it, other users do not (for a root shared by several users, see docs/protocol.md#shared-roots)"
	}
	d.add(CheckRoot, ok("%s", msg))
}

// probeName returns a fresh name for doctor's own files. The leading dot
// keeps it out of every listing and makes it an invalid lock name.
func probeName() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on supported platforms
	return probePrefix + hex.EncodeToString(b[:])
}

// list renders at most max items, then how many more there were.
func list(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:max], "; "), len(items)-max)
}
