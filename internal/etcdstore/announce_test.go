package etcdstore

import (
	"context"
	"slices"
	"testing"
	"time"
)

func announcedStrings(t *testing.T, s *Store, name string) []string {
	t.Helper()
	infos, err := s.Announced(context.Background(), lockKey(name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range infos {
		out = append(out, string(i))
	}
	return out
}

// pollAnnounced waits for the descriptions of name to be want: they are
// written and revoked in the background.
func pollAnnounced(t *testing.T, s *Store, name string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := announcedStrings(t, s, name)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Announced(%s) = %q, want %q", name, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Descriptions are listed per name in the order they were created, and
// vanish once withdrawn, and with a client that stops renewing them.
func TestAnnounce(t *testing.T) {
	s := open(t)
	w1, err := s.Announce(lockKey("a"), "w1", []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	pollAnnounced(t, s, "a", "first")
	w2, err := s.Announce(lockKey("a"), "w2", []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Announce(lockKey("ab"), "w3", []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other()
	pollAnnounced(t, s, "a", "first", "second")
	pollAnnounced(t, s, "ab", "other")
	w1()
	w1()
	pollAnnounced(t, s, "a", "second")
	w2()
	pollAnnounced(t, s, "a")

	// A waiter whose client is gone (a killed process) leaves with its
	// lease.
	gone, err := Open(Config{Endpoints: member.Endpoints(), Prefix: s.prefix, LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gone.Announce(lockKey("k"), "w4", []byte("killed")); err != nil {
		t.Fatal(err)
	}
	pollAnnounced(t, s, "k", "killed")
	_ = gone.cli.Close() // no revoke, no renewal
	pollAnnounced(t, s, "k")
}
