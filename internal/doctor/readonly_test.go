package doctor

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/fsinfo"
	"github.com/lokt-dev/lokt/internal/lockfile"
)

// tree records everything about the files under dir that a lock operation
// could change; directories' own timestamps are left out, because doctor's
// probe files come and go in locks/.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b bytes.Buffer
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v", p, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %d %s %q", info.Size(), info.ModTime().Format(time.RFC3339Nano), data)
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestNeverModifiesLocks(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := newRoot(t) // a live lock and an audit log
	past := time.Now().Add(-2 * time.Hour)
	writeLock(t, dir, lockfile.Lock{Name: "expired", Host: "h", PID: 0, AcquiredAt: lockfile.NewTime(past), ExpiresAt: lockfile.TimePtr(past.Add(time.Hour)), TTLSec: 3600})
	writeLock(t, dir, lockfile.Lock{Name: "dead", Host: "h", PID: os.Getpid(), PIDStart: "gone", AcquiredAt: lockfile.NewTime(past)})
	writeFile(t, filepath.Join(dir, "locks", "broken.json"), "not json")
	writeFile(t, filepath.Join(dir, "locks", "future.json"), `{"version": 2}`)
	writeFile(t, filepath.Join(dir, "freezes", "f.json"), "{")
	writeFile(t, filepath.Join(dir, "locks", ".tmp-old"), "")
	_ = os.Chtimes(filepath.Join(dir, "locks", ".tmp-old"), past, past)
	before := tree(t, dir)
	for _, o := range [][]opt{nil, {withEnv(fsinfo.EnvRequireLocal, "1")}, {withNow(time.Now().Add(time.Hour))}} {
		run(t, dir, o...)
	}
	if after := tree(t, dir); after != before {
		t.Fatalf("doctor changed the root:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestRoundTripFailure(t *testing.T) {
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := newRoot(t)
	locks := filepath.Join(dir, "locks")
	// An immutable directory refuses new entries even to root. Not every
	// filesystem or container allows setting it.
	if out, err := exec.Command("chattr", "+i", locks).CombinedOutput(); err != nil {
		t.Skipf("chattr +i: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", locks).Run() })
	rep := run(t, dir, func(o *Options) { o.Writable = func(string) error { return nil } })
	want(t, rep, CheckRoundTrip, Fail, "writing a file atomically", "LOKT_ROOT")
	want(t, rep, CheckClock, Warn, "probe file")
	if !rep.Failed() {
		t.Fatal("a failed round trip fails doctor")
	}
}
