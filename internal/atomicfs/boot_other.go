//go:build !linux && !darwin

package atomicfs

// No boot id: every token's mark is synced, as before blocks existed.
func bootOnce() string { return "" }
