//go:build unix

package doctor

import "golang.org/x/sys/unix"

// modeBitsMeaningful: permission checks read unix mode bits.
const modeBitsMeaningful = true

// writable asks the kernel whether this process may create and remove
// entries in dir, without creating anything.
func writable(dir string) error { return unix.Access(dir, unix.W_OK|unix.X_OK) }
