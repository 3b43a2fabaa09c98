//go:build unix && !linux

package cli

// awaitExit reports false: without waitid's WNOWAIT the exit is awaited by
// the reap itself, and a signal sent just before it is marked reaped can,
// as with os/exec there, reach a process that reused the pid at once.
func awaitExit(int) bool { return false }
