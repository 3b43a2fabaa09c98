//go:build !linux

package atomicfs

import "os"

// syncData makes f's contents durable (on macOS, Go's Sync is F_FULLFSYNC).
func syncData(f *os.File) error { return f.Sync() }
