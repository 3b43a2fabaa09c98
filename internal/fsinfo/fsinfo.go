// Package fsinfo tells which kind of filesystem holds a path. lokt's
// guarantees rest on flock(2), atomic rename and O_APPEND behaving as they
// do on a local disk; on network and userspace filesystems they may not, so
// doctor warns there and LOKT_REQUIRE_LOCAL_FS makes lock and guard refuse.
package fsinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Kind classifies a filesystem by what lokt can rely on there.
type Kind string

// The kinds. Only KindLocal is trusted; KindUnknown (a type this package
// does not know) is reported but treated as local, because refusing every
// new local filesystem would be worse than missing an exotic remote one.
const (
	KindLocal   Kind = "local"
	KindNetwork Kind = "network" // NFS, SMB/CIFS, 9p, AFS, Ceph, Lustre, ...
	KindCluster Kind = "cluster" // shared-disk cluster filesystems (GFS2, OCFS2)
	KindFUSE    Kind = "fuse"    // userspace drivers: sshfs, rclone, s3fs, virtiofs, ...
	KindUnknown Kind = "unknown"
)

// Info describes the filesystem holding a path.
type Info struct {
	// Type is the filesystem's name as the OS reports it ("ext4", "nfs",
	// "smbfs", "NTFS"), or a magic number when the name is not known.
	Type string
	Kind Kind
}

// Remote reports whether lokt's local-disk assumptions may not hold.
func (i Info) Remote() bool {
	return i.Kind == KindNetwork || i.Kind == KindCluster || i.Kind == KindFUSE
}

// String is "nfs (network)".
func (i Info) String() string { return fmt.Sprintf("%s (%s)", i.Type, i.Kind) }

// Risks explains, for a person, what breaks on a filesystem of this kind.
// It is empty for local and unknown kinds.
func (i Info) Risks() string {
	switch i.Kind {
	case KindNetwork:
		return "on a network filesystem flock(2) may be emulated or not shared between clients, so processes on two machines can both take the same lock; " +
			"a holder's liveness is only checked on its own host, so a crashed client's lock stays held until its TTL; " +
			"file events do not report other clients' changes, so --wait and audit --tail notice them late; " +
			"and appends to audit.log from several clients can interleave"
	case KindCluster:
		return "on a cluster filesystem locking and O_APPEND depend on the cluster lock manager's configuration, " +
			"and a holder's liveness is only checked on its own host, so a crashed node's lock stays held until its TTL"
	case KindFUSE:
		return "on a userspace (FUSE) filesystem flock(2), atomic rename and O_APPEND are whatever the driver implements " +
			"(sshfs, for one, has no locks shared between clients), so mutual exclusion cannot be guaranteed"
	}
	return ""
}

// detector is the statfs-based implementation, or a test's stand-in.
var detector atomic.Pointer[func(string) (Info, error)]

// SetDetectorForTesting makes Detect return what fn says, until the returned
// function is called. It exists so that tests can simulate a network
// filesystem; production code never calls it.
func SetDetectorForTesting(fn func(path string) (Info, error)) (restore func()) {
	old := detector.Swap(&fn)
	return func() { detector.Store(old) }
}

// Simulate is SetDetectorForTesting with a fixed answer.
func Simulate(typ string, kind Kind) (restore func()) {
	return SetDetectorForTesting(func(string) (Info, error) { return Info{Type: typ, Kind: kind}, nil })
}

// Detect returns the filesystem holding path. A path that does not exist
// yet is judged by its nearest existing ancestor, which is where it would be
// created.
func Detect(path string) (Info, error) {
	if fn := detector.Load(); fn != nil {
		return (*fn)(path)
	}
	p, err := Existing(path)
	if err != nil {
		return Info{}, err
	}
	info, err := statfs(p)
	if err != nil {
		return Info{}, fmt.Errorf("filesystem type of %s: %w", p, err)
	}
	return info, nil
}

// Existing returns path if it exists, else its nearest existing ancestor.
func Existing(path string) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for {
		_, err := os.Lstat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		p = parent
	}
}

// EnvRequireLocal is the environment variable that turns the network
// filesystem warning into a refusal.
const EnvRequireLocal = "LOKT_REQUIRE_LOCAL_FS"

// RequireLocalSet reports whether getenv asks for local filesystems only.
// Any value but "", "0", "false", "no" and "off" counts: a strictness switch
// should not be defeated by a spelling.
func RequireLocalSet(getenv func(string) string) bool {
	switch strings.ToLower(strings.TrimSpace(getenv(EnvRequireLocal))) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}

// RefusalError is returned by CheckRequireLocal for a remote filesystem.
type RefusalError struct {
	Path string
	Info Info
}

func (e *RefusalError) Error() string {
	return fmt.Sprintf("lock root %s is on %s, and %s is set, so lokt refuses to take locks there: %s; "+
		"use a lock root on a local disk (set LOKT_ROOT) or unset %s", e.Path, e.Info, EnvRequireLocal, e.Info.Risks(), EnvRequireLocal)
}

// CheckRequireLocal returns a *RefusalError when getenv sets
// LOKT_REQUIRE_LOCAL_FS and path is on a remote filesystem. In that strict
// mode a filesystem whose type cannot be read is refused too: strictness
// that gives way on an error would protect nothing.
func CheckRequireLocal(getenv func(string) string, path string) error {
	if !RequireLocalSet(getenv) {
		return nil
	}
	info, err := Detect(path)
	if err != nil {
		return fmt.Errorf("%s is set but %w", EnvRequireLocal, err)
	}
	if info.Remote() {
		return &RefusalError{Path: path, Info: info}
	}
	return nil
}
