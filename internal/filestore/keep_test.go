//go:build unix

package filestore

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
)

func holdFiles(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), "locks"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, _, ok := parseDotted(e.Name(), keepExt); ok {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func TestKeepEvidence(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a, ab := lockKey("a"), lockKey("a.b")
	keptA, err := s.Keep(ctx, a, "1111")
	if err != nil {
		t.Fatal(err)
	}
	// A second descriptor of the same open file, as a child inherits it.
	fd, err := syscall.Dup(int(keptA.Files()[0].Fd()))
	if err != nil {
		t.Fatal(err)
	}
	dup := os.NewFile(uintptr(fd), "inherited")
	defer func() { _ = dup.Close() }()
	orphan, err := s.Keep(ctx, a, "2222")
	if err != nil {
		t.Fatal(err)
	}
	_ = orphan.Close() // a waiter that died before acquiring
	keptAB, err := s.Keep(ctx, ab, "3333")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = keptAB.Close() }()

	if alive, err := s.Alive(ctx, a, "1111"); err != nil || !alive {
		t.Fatalf("held evidence: alive=%v err=%v", alive, err)
	}
	if alive, err := s.Alive(ctx, a, "2222"); err != nil || alive {
		t.Fatalf("released evidence: alive=%v err=%v", alive, err)
	}
	if alive, err := s.Alive(ctx, a, "9999"); err != nil || alive {
		t.Fatalf("missing evidence: alive=%v err=%v", alive, err)
	}
	// Forget removes only its own file, and only once nobody holds it.
	if err := s.Forget(ctx, a, "1111"); err != nil {
		t.Fatal(err)
	}
	if got := holdFiles(t, s); len(got) != 3 {
		t.Fatalf("forget of held evidence removed something: %v", got)
	}
	// Sweep removes what nobody holds.
	if removed, err := s.Sweep(ctx); err != nil || len(removed) != 1 || removed[0] != ".a.2222.hold" {
		t.Fatalf("sweep removed %v, %v; want the orphan", removed, err)
	}
	if got, want := holdFiles(t, s), []string{".a.1111.hold", ".a.b.3333.hold"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("after sweep: %v, want %v", got, want)
	}
	// Our own descriptor closed, an inherited copy still holds it.
	_ = keptA.Close()
	if alive, _ := s.Alive(ctx, a, "1111"); !alive {
		t.Fatal("evidence lost while an inherited descriptor still holds it")
	}
	_ = dup.Close()
	if alive, _ := s.Alive(ctx, a, "1111"); alive {
		t.Fatal("evidence still held after every descriptor closed")
	}
	if err := s.Forget(ctx, a, "1111"); err != nil {
		t.Fatal(err)
	}
	if got := holdFiles(t, s); len(got) != 1 || got[0] != ".a.b.3333.hold" {
		t.Fatalf("after the last forget: %v", got)
	}
	if _, err := s.Keep(ctx, a, "../x"); err == nil {
		t.Fatal("an id with a path in it was accepted")
	}
}

func TestParseKeepName(t *testing.T) {
	for file, want := range map[string][2]string{
		".a.ff.hold":       {"a", "ff"},
		".a.b.ff.hold":     {"a.b", "ff"},
		".x.lck":           {},
		"a.ff.hold":        {},
		".ff.hold":         {},
		".tmp-.a.ff.hold-": {},
	} {
		name, id, ok := parseDotted(file, keepExt)
		if ok != (want[0] != "") || name != want[0] || id != want[1] {
			t.Errorf("parseDotted(%q) = %q, %q, %v; want %q", file, name, id, ok, want)
		}
	}
}

// Evidence a record names is kept by Sweep even when nobody holds it (the
// holder died, its tree lives on in the noted process group), whether the
// record is a single lock or names several holders.
func TestSweepKeepsNamedEvidence(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	for _, c := range []struct{ name, id, record string }{
		{"one", "aaaa", `{"version":1,"name":"one","lock_id":"aaaa"}`},
		{"many", "bbbb", `{"version":2,"name":"many","holders":[{"lock_id":"cccc"},{"lock_id":"bbbb"}]}`},
	} {
		kept, err := s.Keep(ctx, lockKey(c.name), c.id)
		if err != nil {
			t.Fatal(err)
		}
		_ = kept.Close() // the holder is gone
		put(t, s, lockKey(c.name), c.record)
	}
	orphan, err := s.Keep(ctx, lockKey("many"), "dddd")
	if err != nil {
		t.Fatal(err)
	}
	_ = orphan.Close()
	removed, err := s.Sweep(ctx)
	if err != nil || len(removed) != 1 || removed[0] != ".many.dddd.hold" {
		t.Fatalf("sweep removed %v, %v; want only the unnamed orphan", removed, err)
	}
}
