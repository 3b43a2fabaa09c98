//go:build darwin

package fsinfo

import (
	"strings"

	"golang.org/x/sys/unix"
)

func statfs(path string) (Info, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Info{}, err
	}
	return classifyDarwin(unix.ByteSliceToString(st.Fstypename[:]), st.Flags&unix.MNT_LOCAL != 0), nil
}

// classifyDarwin trusts the name first (macFUSE mounts can claim MNT_LOCAL),
// then the kernel's MNT_LOCAL flag.
func classifyDarwin(name string, local bool) Info {
	switch {
	case strings.Contains(name, "fuse"):
		return Info{Type: name, Kind: KindFUSE}
	case !local:
		return Info{Type: name, Kind: KindNetwork}
	}
	return Info{Type: name, Kind: KindLocal}
}
