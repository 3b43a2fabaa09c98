package filestore

import (
	"context"
	"testing"

	"github.com/lokt-dev/lokt/store"
)

// BenchmarkAcquireRelease is one acquisition and one release of a lock held
// by a local process, as the engine stores them: a new token (Seq) and a
// record that need not survive a host crash, then its removal.
func BenchmarkAcquireRelease(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	k := store.Key{NS: store.Locks, Name: "bench"}
	data := []byte(`{"version":1,"name":"bench"}` + "\n")
	for b.Loop() {
		err := s.Update(ctx, k, func(_ []byte, seq uint64) (store.Change, error) {
			return store.Change{Op: store.Put, Data: data, Seq: seq + 1}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
		err = s.Update(ctx, k, func([]byte, uint64) (store.Change, error) {
			return store.Change{Op: store.Delete}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnnounce is what a waiter of an exclusive lock pays to be
// listed: its description written held, then withdrawn (the withdrawal is
// on the hand-off path, after the waiter's acquisition).
func BenchmarkAnnounce(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	k := store.Key{NS: store.Locks, Name: "bench"}
	info := []byte(`{"wait_id":"0123456789abcdef0123456789abcdef","mode":"exclusive","owner":"bench","host":"h","pid":1,"pid_start":"1","since":"2030-01-01T00:00:00Z"}`)
	for b.Loop() {
		withdraw, err := s.Announce(k, "0123456789abcdef0123456789abcdef", info)
		if err != nil {
			b.Fatal(err)
		}
		withdraw()
	}
}
