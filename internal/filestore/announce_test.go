//go:build unix

package filestore

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/store"
)

func announced(t *testing.T, s *Store, k store.Key) []string {
	t.Helper()
	infos, err := s.Announced(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range infos {
		out = append(out, string(i))
	}
	return out
}

// Waiters' descriptions are listed in arrival order while held, per name
// (a name with a dot does not catch its prefix's), never once their waiter
// has withdrawn or died; Sweep removes a dead waiter's file and never a
// live one's; none of them is a record.
func TestAnnounce(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a, ab := lockKey("a"), lockKey("a.b")
	w1, err := s.Announce(a, "w1", []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	dir, name, err := s.waitingFile(a, "dead", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := dir.CreateHeldWith(name, filePerm, []byte("dead"))
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close() // a waiter SIGKILLed: its file stays, unheld
	w2, err := s.Announce(a, "w2", []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	w3, err := s.Announce(ab, "w3", []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	defer w3()
	if got := announced(t, s, a); !slices.Equal(got, []string{"first", "second"}) {
		t.Errorf("Announced(a) = %q, want first, second", got)
	}
	if got := announced(t, s, ab); !slices.Equal(got, []string{"other"}) {
		t.Errorf("Announced(a.b) = %q", got)
	}
	if names, err := s.List(ctx, store.Locks); err != nil || len(names) != 0 {
		t.Errorf("List = %q, %v; descriptions are not records", names, err)
	}

	removed, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{name}) {
		t.Errorf("Sweep removed %q, want only the dead waiter's %q", removed, name)
	}
	w1()
	w1() // once only
	if got := announced(t, s, a); !slices.Equal(got, []string{"second"}) {
		t.Errorf("after the first withdrew: %q", got)
	}
	w2()
	entries, err := os.ReadDir(filepath.Join(s.Root(), "locks"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n, _, ok := parseDotted(e.Name(), waitingExt); ok && n == "a" {
			t.Errorf("%s left behind after its waiter withdrew", e.Name())
		}
	}
	if _, err := s.Announce(a, "bad.id", nil); err == nil {
		t.Error("an id with a dot was accepted")
	}
}

// status --watch sees waiters join and leave; waiters (Watch) do not.
func TestWatchChangesSeesWaiters(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := lockKey("w")
	changes, every, removals := watchThree(ctx, t, s, k)
	other, err := s.WatchChanges(ctx, lockKey("w.x"))
	if err != nil {
		t.Fatal(err)
	}
	withdraw, err := s.Announce(k, "id1", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, changes, "a waiter joining")
	waitEvent(t, every, "a waiter joining, for every name")
	withdraw()
	waitEvent(t, changes, "a waiter leaving")
	// A removal that Watch does see, after which nothing else may be
	// pending: events arrive in order.
	put(t, s, k, "v")
	del(t, s, k)
	waitEvent(t, removals, "the record's removal")
	select {
	case <-removals:
		t.Error("Watch woke for a waiter")
	default:
	}
	select {
	case <-other:
		t.Error("a watch of another name woke for a waiter of w")
	default:
	}
}

// A link planted under a waiter's file name describes nobody: Announced
// skips it without following it, and Sweep leaves it (and what it points
// to) alone, since it is not a file lokt made.
func TestAnnounceIgnoresPlantedLink(t *testing.T) {
	s := openStore(t)
	outside := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(outside, []byte(`{"pid":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(s.Root(), "locks", ".x.0000000000000001-planted.waiting")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	if got := announced(t, s, lockKey("x")); len(got) != 0 {
		t.Fatalf("Announced followed a planted link: %q", got)
	}
	removed, _ := s.Sweep(context.Background())
	if slices.Contains(removed, filepath.Base(link)) {
		t.Fatalf("Sweep removed a link lokt did not make: %v", removed)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Fatalf("the planted link is gone: %v", err)
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != `{"pid":1}` {
		t.Fatalf("the link's target changed: %q, %v", b, err)
	}
}
