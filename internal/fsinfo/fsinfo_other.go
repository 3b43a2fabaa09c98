//go:build !linux && !darwin && !windows

package fsinfo

// statfs cannot name the filesystem on this platform; doctor says so.
func statfs(string) (Info, error) { return Info{Type: "unknown", Kind: KindUnknown}, nil }
