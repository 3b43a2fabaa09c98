//go:build unix

package audit

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/atomicfs"
)

func TestNewLogIsPrivate(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0) // the mode must not depend on a permissive umask
	defer syscall.Umask(old)
	l := New(dir, DefaultConfig())
	defer l.Close()
	appendN(t, l, "x", 0, 1)
	st, err := os.Stat(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("new audit.log has mode %04o, want 0600", st.Mode().Perm())
	}
	// Rotation's fresh audit.log is private too.
	r := New(dir, Config{MaxBytes: 1, Keep: 2})
	defer r.Close()
	appendN(t, r, "x", 1, 3)
	for _, p := range []string{genPath(l.Path(), 1), genPath(l.Path(), 2)} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v", p, err, st.Mode())
		}
	}
}

// TestSharedRootLogIsGroupWritable: in a setgid root (the documented
// shared set-up) a new log, and rotation's fresh one, is 0660: every member
// of the group appends, others get nothing, whatever a permissive umask.
func TestSharedRootLogIsGroupWritable(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o770|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode()&os.ModeSetgid == 0 {
		t.Skipf("cannot set the setgid bit on %s here (%v)", dir, err)
	}
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	l := New(dir, Config{MaxBytes: 1, Keep: 2})
	defer l.Close()
	appendN(t, l, "x", 0, 3)
	for _, p := range []string{genPath(l.Path(), 1), genPath(l.Path(), 2)} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o660 {
			t.Fatalf("%s: %v, stat %v; want mode 0660 in a setgid root", p, err, st)
		}
	}
	syscall.Umask(0o022) // a strict umask still narrows it
	l2 := New(dir, DefaultConfig())
	defer l2.Close()
	appendN(t, l2, "x", 3, 4)
	if st, err := os.Stat(l2.Path()); err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("%v, stat %v; want mode 0640 under umask 022", err, st)
	}
}

func TestExistingModeIsNotChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	l := New(dir, DefaultConfig())
	defer l.Close()
	appendN(t, l, "x", 0, 1)
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Fatalf("mode changed to %04o; lokt leaves an existing log's mode to its owner (doctor warns)", st.Mode().Perm())
	}
}

func TestRefusesSymlinkAndFIFO(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	l := New(dir, DefaultConfig())
	if err := l.Append(testRec("x", 1)); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("append through a symlink: %v", err)
	}
	if _, err := Scan(dir, func([]byte, *Record) error { return nil }); err == nil {
		t.Fatal("scan through a symlink: want an error")
	}
	if data, _ := os.ReadFile(target); string(data) != "keep\n" {
		t.Fatalf("symlink target changed: %q", data)
	}

	dir = t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, FileName), 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	l = New(dir, DefaultConfig())
	// Must fail, not hang waiting for a reader.
	if err := l.Append(testRec("x", 1)); err == nil {
		t.Fatal("append to a FIFO: want an error")
	}
	if _, err := Scan(dir, func([]byte, *Record) error { return nil }); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("scan of a FIFO: %v", err)
	}
}

func TestRotationWaitsForOtherLockHolders(t *testing.T) {
	dir := t.TempDir()
	plain := New(dir, Config{})
	appendN(t, plain, "x", 0, 2)
	_ = plain.Close()
	l := New(dir, Config{MaxBytes: 1, Keep: 5})
	defer l.Close()
	// A reader holds the current file: rotation must not wait for it, and
	// must not happen under it.
	reader, err := openRead(openDir(t, dir), FileName)
	if err != nil {
		t.Fatal(err)
	}
	if err := lockSharedWait(reader); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(l.Path())
	appendN(t, l, "x", 2, 3)
	if st, err := os.Stat(l.Path()); err != nil || !os.SameFile(st, before) {
		t.Fatalf("audit.log rotated while share-locked: %v", err)
	}
	_ = unlock(reader)
	_ = reader.Close()
	appendN(t, l, "x", 3, 4)
	if _, err := os.Stat(l.Path()); !os.IsNotExist(err) {
		t.Fatalf("audit.log not rotated once unlocked: %v", err)
	}
	checkComplete(t, tokens(t, dir), 1, 4, "x")
}

func TestWriterGivesUpOnStuckRotator(t *testing.T) {
	dir := t.TempDir()
	l := New(dir, DefaultConfig())
	defer l.Close()
	appendN(t, l, "x", 0, 1)
	// Another process stopped half-way through a rotation: it holds the
	// exclusive lock. The writer must give up, not hang the lock operation.
	stuck, err := openAppend(openDir(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	if ok, err := tryLockExclusive(stuck); !ok || err != nil {
		t.Fatalf("exclusive lock: %v %v", ok, err)
	}
	old := sharedLockPatience
	sharedLockPatience = 20 * time.Millisecond
	defer func() { sharedLockPatience = old }()
	if err := l.Append(testRec("x", 1)); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("append under a stuck rotator: %v", err)
	}
	_ = unlock(stuck)
	appendN(t, l, "x", 1, 2)
	checkComplete(t, tokens(t, dir), 1, 2, "x")
}

func openDir(t *testing.T, dir string) *atomicfs.Dir {
	t.Helper()
	d, err := atomicfs.OpenDir(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}
