//go:build windows

package fsinfo

import (
	"path/filepath"

	"golang.org/x/sys/windows"
)

// statfs asks for the volume holding path: mapped drives and UNC shares
// report DRIVE_REMOTE.
func statfs(path string) (Info, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Info{}, err
	}
	p, err := windows.UTF16PtrFromString(abs)
	if err != nil {
		return Info{}, err
	}
	const bufLen = windows.MAX_PATH + 1
	vol := make([]uint16, bufLen)
	if err := windows.GetVolumePathName(p, &vol[0], bufLen); err != nil {
		return Info{}, err
	}
	name := make([]uint16, bufLen)
	if err := windows.GetVolumeInformation(&vol[0], nil, 0, nil, nil, nil, &name[0], bufLen); err != nil {
		return Info{}, err
	}
	info := Info{Type: windows.UTF16ToString(name), Kind: KindLocal}
	if windows.GetDriveType(&vol[0]) == windows.DRIVE_REMOTE {
		info.Kind = KindNetwork
	}
	return info, nil
}
