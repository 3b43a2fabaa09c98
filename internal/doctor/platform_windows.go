//go:build windows

package doctor

// modeBitsMeaningful is false: Windows permissions are ACLs, and Go's mode
// bits only reflect the read-only attribute.
const modeBitsMeaningful = false

// writable cannot be answered without creating a file on Windows; the round
// trip check does that inside the root.
func writable(string) error { return nil }
