package atomicfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestWriteFileCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(dir, "a.json", []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dir, "a.json", []byte("second, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dir, "a.json", []byte("3"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "a.json"))
	if err != nil || string(got) != "3" {
		t.Fatalf("content = %q, %v; want %q", got, err, "3")
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "a.json" {
		t.Errorf("directory holds %v after successful writes, want only a.json", names)
	}
	// perm is honoured (a umask can only take bits away).
	if err := WriteFile(dir, "private.json", []byte("p"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "private.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("mode = %v, want no group/other bits", st.Mode())
	}
}

// A reader racing a writer sees either the old or the new content, never
// an empty, truncated or mixed file.
func TestWriteFileReaderSeesWholeFiles(t *testing.T) {
	dir := t.TempDir()
	short := []byte("short")
	long := bytes.Repeat([]byte("L"), 32<<10)
	if err := WriteFile(dir, "r.json", short, 0o644); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			got, err := ReadFile(filepath.Join(dir, "r.json"))
			if err != nil {
				bad.Store(err.Error())
				return
			}
			if !bytes.Equal(got, short) && !bytes.Equal(got, long) {
				bad.Store(fmt.Sprintf("read %d bytes starting %q", len(got), got[:min(len(got), 20)]))
				return
			}
		}
	}()
	for i := 0; i < 60 && bad.Load() == nil; i++ {
		data := short
		if i%2 == 0 {
			data = long
		}
		if err := WriteFile(dir, "r.json", data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Fatalf("reader saw a partial file: %v", v)
	}
}

func TestWriteFileFailureLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	// The target is a non-empty directory: the rename over it fails even
	// for root.
	target := filepath.Join(dir, "x.json")
	if err := os.MkdirAll(filepath.Join(target, "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dir, "x.json", []byte("data"), 0o644); err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "x.json" {
		t.Errorf("directory holds %v after a failed write, want only x.json", names)
	}
	if st, err := os.Lstat(filepath.Join(target, "inner")); err != nil || !st.IsDir() {
		t.Errorf("the directory in the way was changed: %v", err)
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if err := WriteFile(dir, "x.json", []byte("data"), 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile into a missing directory: %v, want ErrNotExist", err)
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(dir, "x.json", []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir, "x.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "x.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file still there: %v", err)
	}
	if err := Remove(dir, "x.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Remove of a missing file: %v, want ErrNotExist", err)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.json")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(p); err != nil || string(got) != "hello" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func TestReadFileRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "l.json")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(link)
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("ReadFile(symlink) = %q, %v; want ErrNotRegular", got, err)
	}
	if !strings.Contains(err.Error(), "symlink") {
		t.Errorf("message %q does not say it is a symlink", err)
	}
	// A dangling symlink is refused the same way, not reported missing.
	dangling := filepath.Join(dir, "d.json")
	if err := os.Symlink(filepath.Join(dir, "nothing"), dangling); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(dangling); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadFile(dangling symlink) = %v; want ErrNotRegular", err)
	}
}

func TestReadFileRefusesDirectory(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "d.json")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(sub)
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("ReadFile(dir) = %v; want ErrNotRegular naming a directory", err)
	}
}

func TestReadFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "big.json")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(p); err != nil || len(got) != 1<<20 {
		t.Fatalf("1 MiB file: len %d, %v; want it read", len(got), err)
	}
	if err := os.WriteFile(p, make([]byte, 1<<20+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(p); err == nil {
		t.Fatalf("1 MiB + 1 file read (%d bytes), want an error", len(got))
	}
}

func TestIsTemp(t *testing.T) {
	if !IsTemp(TempPrefix + "x.json-0a1b2c") {
		t.Error("IsTemp(temp name) = false")
	}
	for _, n := range []string{"x.json", ".x.lck", "tmp-x", ""} {
		if IsTemp(n) {
			t.Errorf("IsTemp(%q) = true", n)
		}
	}
}

func TestKind(t *testing.T) {
	for m, want := range map[fs.FileMode]string{
		fs.ModeSymlink | 0o777:            "symlink",
		fs.ModeDir | 0o755:                "directory",
		fs.ModeNamedPipe | 0o644:          "named pipe",
		fs.ModeSocket | 0o755:             "socket",
		fs.ModeDevice | 0o600:             "device",
		fs.ModeCharDevice | fs.ModeDevice: "device",
		0o644:                             "regular file",
		fs.ModeIrregular:                  "special file",
	} {
		if got := Kind(m); got != want {
			t.Errorf("Kind(%v) = %q, want %q", m, got, want)
		}
	}
}

func counter(t *testing.T, g *Guard) uint64 {
	t.Helper()
	v, err := g.Counter()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGuardCounter(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".x.lck")
	g, err := LockGuard(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if got := counter(t, g); got != 0 {
		t.Errorf("fresh Counter() = %d, want 0", got)
	}
	for _, v := range []uint64{1, 2, 12345, 1<<64 - 2, 1<<64 - 1} {
		if err := g.SetCounter(v); err != nil {
			t.Fatal(err)
		}
		if got := counter(t, g); got != v {
			t.Errorf("Counter() after SetCounter(%d) = %d", v, got)
		}
	}
	if err := g.Unlock(); err != nil {
		t.Fatal(err)
	}
	// The counter outlives the lock.
	g, err = LockGuard(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Unlock() }()
	if got := counter(t, g); got != 1<<64-1 {
		t.Errorf("Counter() after relock = %d, want the last value", got)
	}
}

// A guard file that holds no counter must stop tokens, not restart them.
func TestGuardCounterGarbageIsAnError(t *testing.T) {
	for _, content := range []string{"garbage\n", "\x00\x00\x00\x00", "00000000000000000012x\n", "-5\n", strings.Repeat("9", 300)} {
		p := filepath.Join(t.TempDir(), ".x.lck")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		g, err := LockGuard(p, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		v, err := g.Counter()
		if !errors.Is(err, ErrBadCounter) || !strings.Contains(err.Error(), p) {
			t.Errorf("Counter() of %q = %d, %v; want ErrBadCounter naming the file", content, v, err)
		}
		if err := g.SetCounter(1); !errors.Is(err, ErrBadCounter) {
			t.Errorf("SetCounter over %q = %v, want ErrBadCounter", content, err)
		}
		_ = g.Unlock()
		if got, _ := os.ReadFile(p); string(got) != content {
			t.Errorf("garbage changed to %q", got)
		}
	}
}

// A v1 guard file is a 20-digit counter and a newline; a hand-written one
// may lack the padding.
func TestGuardCounterReadsV1(t *testing.T) {
	for content, want := range map[string]uint64{"00000000000000000041\n": 41, "41\n": 41, "7": 7} {
		p := filepath.Join(t.TempDir(), ".x.lck")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		g, err := LockGuard(p, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if got := counter(t, g); got != want {
			t.Errorf("Counter() of %q = %d, want %d", content, got, want)
		}
		if err := g.SetCounter(want + 1); err != nil {
			t.Fatal(err)
		}
		_ = g.Unlock()
		// What a v1 lokt reads from the new format: the mark, which is at
		// least every token issued.
		b, _ := os.ReadFile(p)
		v1, err := strconv.ParseUint(strings.TrimSpace(string(b[:24])), 10, 64)
		if err != nil || v1 < want+1 {
			t.Errorf("a v1 reader of %q reads %d, %v; want at least %d", b, v1, err, want+1)
		}
	}
}

func TestGuardCounterBlocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".x.lck")
	next := func() uint64 {
		t.Helper()
		g, err := LockGuard(p, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = g.Unlock() }()
		v := counter(t, g) + 1
		if err := g.SetCounter(v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	prev := uint64(0)
	for range 2*Block + 10 {
		v := next()
		if v != prev+1 {
			t.Fatalf("token %d after %d, want consecutive tokens within a boot", v, prev)
		}
		prev = v
	}
	b, _ := os.ReadFile(p)
	mark, _ := strconv.ParseUint(string(b[:20]), 10, 64)
	if mark < prev || mark > prev+Block {
		t.Errorf("durable mark %d with last token %d, want within one block above", mark, prev)
	}

	// A reboot: the unsynced last line cannot be trusted, so the next
	// token starts above the durable mark.
	old := bootID
	bootID = func() string { return "another-boot" }
	defer func() { bootID = old }()
	if v := next(); v != mark+1 {
		t.Errorf("first token after a reboot = %d, want %d (above the mark %d)", v, mark+1, mark)
	}
	// An older lokt rewrites the first line alone, as its counter: that
	// value is the last token, whatever the last line says.
	if err := os.WriteFile(p, append([]byte("00000000000000999999\n"), b[21:]...), 0o644); err != nil {
		t.Fatal(err)
	}
	if v := next(); v != 1000000 {
		t.Errorf("token after a v1 write = %d, want 1000000", v)
	}
}

func TestLockGuardRefusesSymlinkAndDir(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(outside, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, ".l.lck")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	if g, err := LockGuard(link, 0o644); !errors.Is(err, ErrNotRegular) {
		if g != nil {
			_ = g.Unlock()
		}
		t.Fatalf("LockGuard(symlink) = %v, want ErrNotRegular", err)
	}
	if got, _ := os.ReadFile(outside); string(got) != "untouched" {
		t.Errorf("symlink target changed to %q", got)
	}
	sub := filepath.Join(dir, ".d.lck")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if g, err := LockGuard(sub, 0o644); err == nil {
		_ = g.Unlock()
		t.Fatal("LockGuard(directory) succeeded")
	}
}
