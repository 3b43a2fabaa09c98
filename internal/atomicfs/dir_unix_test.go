//go:build unix

package atomicfs

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func openTestDir(t *testing.T, path string) *Dir {
	t.Helper()
	d, err := OpenDir(path, true, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestOpenDir(t *testing.T) {
	base := t.TempDir()
	nested := filepath.Join(base, "a", "b")
	d := openTestDir(t, nested)
	if d.Path() != nested {
		t.Errorf("Path() = %q, want %q", d.Path(), nested)
	}
	if _, err := OpenDir(filepath.Join(base, "missing"), false, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenDir(missing, no create) = %v, want ErrNotExist", err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(file, true, 0o755); err == nil || !strings.Contains(err.Error(), "regular file") {
		t.Errorf("OpenDir(regular file) = %v, want a refusal naming it", err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(nested, link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(link, true, 0o755); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("OpenDir(symlink) = %v, want a refusal naming the symlink", err)
	}
	// A link above the directory is resolved.
	if _, err := OpenDir(filepath.Join(link, ".."), false, 0); err != nil {
		t.Errorf("OpenDir below a symlink: %v", err)
	}
	if _, err := d.Sub("file", false, 0); err == nil {
		t.Error("Sub of a missing directory succeeded")
	}
	if err := os.WriteFile(filepath.Join(nested, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sub("f", true, 0o755); err == nil || !strings.Contains(err.Error(), "regular file") {
		t.Errorf("Sub(regular file) = %v, want a refusal", err)
	}
}

func TestDirEntries(t *testing.T) {
	d := openTestDir(t, t.TempDir())
	for _, n := range []string{"b", "a"} {
		if err := d.WriteFile(n, []byte(n), 0o644, false); err != nil {
			t.Fatal(err)
		}
	}
	names, err := d.ReadDirNames()
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("ReadDirNames = %v, %v (no temporary files may remain)", names, err)
	}
	f, err := d.OpenFile("a", os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if held, err := d.Holds("a", f); !held || err != nil {
		t.Errorf("Holds(a, a's file) = %v, %v", held, err)
	}
	if err := d.Rename("a", "c"); err != nil {
		t.Fatal(err)
	}
	if held, err := d.Holds("a", f); held || err != nil {
		t.Errorf("Holds(a) after a rename = %v, %v; want false", held, err)
	}
	if held, err := d.Holds("b", f); held || err != nil {
		t.Errorf("Holds(b, a's file) = %v, %v; want false", held, err)
	}
	if err := d.Remove("c", false); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("c", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove(missing) = %v, want ErrNotExist", err)
	}
	if err := d.Rename("missing", "x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Rename(missing) = %v, want ErrNotExist", err)
	}
}

func TestDirTypes(t *testing.T) {
	dir, err := os.MkdirTemp("", "afs") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	d := openTestDir(t, dir)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("x", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"fifo": "named pipe", "link": "symlink", "sub": "directory"}
	if l, err := net.Listen("unix", filepath.Join(dir, "sock")); err == nil {
		defer func() { _ = l.Close() }()
		want["sock"] = "socket"
	}
	for name, kind := range want {
		m, err := d.Type(name)
		if err != nil || Kind(m) != kind {
			t.Errorf("Type(%s) = %v (%s), %v; want %s", name, m, Kind(m), err, kind)
		}
		for _, flag := range []int{os.O_RDONLY, os.O_WRONLY, os.O_RDWR | os.O_CREATE} {
			if f, err := d.OpenFile(name, flag, 0o644); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), kind) {
				if f != nil {
					_ = f.Close()
				}
				t.Errorf("OpenFile(%s, %#x) = %v, want ErrNotRegular naming a %s", name, flag, err, kind)
			}
		}
	}
	if _, err := d.Type("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Type(missing) = %v", err)
	}
	for m, kind := range map[uint32]string{syscall.S_IFCHR: "device", syscall.S_IFBLK: "device", syscall.S_IFREG: "regular file", 0: "special file"} {
		if got := Kind(modeOf(m)); got != kind {
			t.Errorf("Kind(modeOf(%#o)) = %s, want %s", m, got, kind)
		}
	}
}

func TestHeld(t *testing.T) {
	d := openTestDir(t, t.TempDir())
	if held, err := d.IsHeld("e"); held || err != nil {
		t.Errorf("IsHeld(missing) = %v, %v", held, err)
	}
	f, err := d.CreateHeld("e", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if held, err := d.IsHeld("e"); !held || err != nil {
		t.Errorf("IsHeld while held = %v, %v", held, err)
	}
	_ = f.Close()
	if held, err := d.IsHeld("e"); held || err != nil {
		t.Errorf("IsHeld after close = %v, %v", held, err)
	}
	if err := os.Symlink("e", filepath.Join(d.Path(), "l")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.IsHeld("l"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("IsHeld(symlink) = %v, want ErrNotRegular", err)
	}
	names, _ := d.ReadDirNames()
	slices.Sort(names)
	if !slices.Equal(names, []string{"e", "l"}) {
		t.Errorf("files left: %v", names)
	}
}

// A file created held with content is read as held with that content,
// never before it has its name, and as not held once its holder is gone.
func TestReadHeld(t *testing.T) {
	d := openTestDir(t, t.TempDir())
	if data, held, err := d.ReadHeld("w"); held || err != nil || data != nil {
		t.Errorf("ReadHeld(missing) = %q, %v, %v", data, held, err)
	}
	f, err := d.CreateHeldWith("w", 0o644, []byte(`{"pid":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if data, held, err := d.ReadHeld("w"); !held || err != nil || string(data) != `{"pid":1}` {
		t.Errorf("ReadHeld while held = %q, %v, %v", data, held, err)
	}
	_ = f.Close()
	if data, held, err := d.ReadHeld("w"); held || err != nil || data != nil {
		t.Errorf("ReadHeld after close = %q, %v, %v", data, held, err)
	}
	if err := os.Symlink("w", filepath.Join(d.Path(), "l")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.ReadHeld("l"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadHeld(symlink) = %v, want ErrNotRegular", err)
	}
	names, _ := d.ReadDirNames()
	slices.Sort(names)
	if !slices.Equal(names, []string{"l", "w"}) {
		t.Errorf("files left: %v (no temporary file may stay)", names)
	}
}

func TestParseCounterAndBoot(t *testing.T) {
	if v, err := ParseCounter([]byte("00000000000000000009\n")); v != 9 || err != nil {
		t.Errorf("ParseCounter(v1) = %d, %v", v, err)
	}
	if _, err := ParseCounter([]byte("x")); !errors.Is(err, ErrBadCounter) {
		t.Errorf("ParseCounter(garbage) = %v", err)
	}
	if got := fitBoot("short-id"); got != "short-id" {
		t.Errorf("fitBoot(short) = %q", got)
	}
	long := fitBoot(strings.Repeat("x", 100))
	if len(long) > bootLen || long == fitBoot(strings.Repeat("y", 100)) || strings.ContainsAny(long, " \n") {
		t.Errorf("fitBoot(long) = %q", long)
	}
	if id := bootOnce(); id == "" || len(id) > bootLen {
		t.Logf("no usable boot id here: %q", id)
	}
}

func TestStillAtAndSameAs(t *testing.T) {
	parent := t.TempDir()
	path := filepath.Join(parent, "root")
	d := openTestDir(t, path)
	sub, err := d.Sub("locks", true, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Close() }()
	if err := d.StillAt(); err != nil {
		t.Errorf("StillAt of an untouched directory: %v", err)
	}
	if err := d.SameAs("locks", sub); err != nil {
		t.Errorf("SameAs of an untouched directory: %v", err)
	}
	if err := os.Rename(filepath.Join(path, "locks"), filepath.Join(path, "old")); err != nil {
		t.Fatal(err)
	}
	if err := d.SameAs("locks", sub); !errors.Is(err, ErrSwapped) {
		t.Errorf("SameAs of a removed directory = %v, want ErrSwapped", err)
	}
	if err := os.Mkdir(filepath.Join(path, "locks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.SameAs("locks", sub); !errors.Is(err, ErrSwapped) || !strings.Contains(err.Error(), "directory") {
		t.Errorf("SameAs of a replaced directory = %v, want ErrSwapped", err)
	}
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := d.StillAt(); !errors.Is(err, ErrSwapped) {
		t.Errorf("StillAt of a moved directory = %v, want ErrSwapped", err)
	}
	if err := os.Symlink(path+".moved", path); err != nil {
		t.Fatal(err)
	}
	if err := d.StillAt(); !errors.Is(err, ErrSwapped) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("StillAt with a symlink in its place = %v, want ErrSwapped naming it", err)
	}
}
