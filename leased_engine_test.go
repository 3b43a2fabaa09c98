package lokt

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lokt-dev/lokt/internal/filestore"
)

// engLeasingStore is the file store claiming that a kept record ends with
// its holder's lease, as the etcd store's do: only what the engine says
// about such a record changes.
type engLeasingStore struct{ *filestore.Store }

func (engLeasingStore) LeasesRecords() {}

// A kept record on a store that leases records is held until its holder
// releases it or stops renewing the lease, wherever the holder runs; the
// same record on a store that does not is held until unlocked when lokt
// cannot check its holder.
func TestLeasedHolderMessages(t *testing.T) {
	f := newEngFixture(t)
	ctx := context.Background()
	fs, err := filestore.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	leasing := f.open(WithStore(engLeasingStore{fs}))
	elsewhere := Holder{Host: "host-a", PID: 3, Start: "start-3"}
	h, err := leasing.Hold(ctx, "x", HoldOptions{AcquireOptions: engAcqOpts("alice", elsewhere, 0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Abandon)

	_, err = leasing.Acquire(ctx, "x", engAcqOpts("bob", f.holder(200), 0))
	var held *HeldError
	if !errors.As(err, &held) || !held.Leased || held.Foreign != "on another host" {
		t.Fatalf("acquire on the leasing store: %v (%+v), want a HeldError on a lease, from another host", err, held)
	}
	if msg := err.Error(); !strings.Contains(msg, "keeps it on a lease") || strings.Contains(msg, "until unlocked") {
		t.Errorf("message on the leasing store: %q", msg)
	}
	if st, err := leasing.Get(ctx, "x"); err != nil || !st.Leased || st.State != StateLive {
		t.Errorf("status on the leasing store: %+v, %v; want live and leased", st, err)
	}

	_, err = f.root.Acquire(ctx, "x", engAcqOpts("bob", f.holder(200), 0))
	if !errors.As(err, &held) || held.Leased {
		t.Fatalf("acquire on the file store: %v, want a HeldError not on a lease", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "held until unlocked") {
		t.Errorf("message on the file store: %q", msg)
	}
	if st, err := f.root.Get(ctx, "x"); err != nil || st.Leased {
		t.Errorf("status on the file store: %+v, %v; want not leased", st, err)
	}
}
