//go:build linux || darwin

package proc

import "errors"

// Check reports whether process pid is alive and, when token != "", still
// the same process (its StartToken equals token). pid <= 0 gives Unknown.
func Check(pid int, token string) Liveness {
	if pid <= 0 {
		return Unknown
	}
	got, err := StartToken(pid)
	switch {
	case errors.Is(err, ErrNoProcess):
		return Dead
	case err != nil:
		// Could not look: never declare a holder dead on a guess.
		return Unknown
	case token == "" || got == token:
		return Alive
	default:
		// Same pid, different start: the pid was reused.
		return Dead
	}
}
