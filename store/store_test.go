package store

import (
	"errors"
	"io/fs"
	"testing"
)

// The engine returns Change{} from a callback to mean "leave it": the zero
// Op must be Keep.
func TestZeroChangeKeeps(t *testing.T) {
	var c Change
	if c.Op != Keep || Keep != 0 {
		t.Fatalf("zero Change has Op %d, want Keep", c.Op)
	}
	if Put == Keep || Delete == Keep || Put == Delete {
		t.Fatal("operations are not distinct")
	}
}

func TestErrors(t *testing.T) {
	if !errors.Is(ErrNotExist, fs.ErrNotExist) {
		t.Error("ErrNotExist is not fs.ErrNotExist: backends wrapping os errors would not match")
	}
	if errors.Is(ErrUnsafe, fs.ErrNotExist) || ErrUnsafe == nil {
		t.Error("ErrUnsafe must be its own error")
	}
}

func TestNamespacesDiffer(t *testing.T) {
	if Locks == Freezes || Locks != "locks" || Freezes != "freezes" {
		t.Fatalf("namespaces %q and %q: they are directory names of the protocol", Locks, Freezes)
	}
	if (Key{NS: Locks, Name: "x"}) == (Key{NS: Freezes, Name: "x"}) {
		t.Fatal("a lock and a freeze of one name share a key")
	}
}
