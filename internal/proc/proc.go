// Package proc answers whether the process recorded as a lock's holder is
// still the same live process, so stale locks can be told from held ones.
package proc

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// Liveness of a recorded holder.
type Liveness int

const (
	// Unknown means liveness cannot be determined (no permission,
	// unsupported platform); callers must treat it as alive.
	Unknown Liveness = iota
	// Alive means the process exists and, when a token was given, is the
	// same process that produced it.
	Alive
	// Dead means the process is gone, is a zombie, or its pid now belongs
	// to a different process.
	Dead
)

// String returns "unknown", "alive" or "dead".
func (l Liveness) String() string {
	switch l {
	case Unknown:
		return "unknown"
	case Alive:
		return "alive"
	case Dead:
		return "dead"
	default:
		return fmt.Sprintf("Liveness(%d)", int(l))
	}
}

// ErrNoProcess is returned by StartToken when pid does not exist or has
// already exited (zombie).
var ErrNoProcess = errors.New("no such process")

// maxPID bounds pids we pass to the OS: every supported kernel keeps pids in
// 32 bits, and a larger value could wrap to a negative (process-group) pid.
const maxPID = 1<<31 - 1

// hostname is computed once: it is used on every lock operation and must
// not change for the lifetime of the process.
var hostname = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown-host"
	}
	return h
})

// Hostname returns os.Hostname(), or "unknown-host" on error, cached.
func Hostname() string { return hostname() }

func invalidPID(pid int) error {
	return fmt.Errorf("proc: invalid pid %d", pid)
}
