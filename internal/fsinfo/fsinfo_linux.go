//go:build linux

package fsinfo

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func statfs(path string) (Info, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Info{}, err
	}
	return classifyMagic(uint32(st.Type)), nil // #nosec G115 -- f_type is a 32-bit magic number
}

// magic maps statfs(2) f_type values (linux/magic.h and the drivers that
// define their own) to names and kinds. Only the remote ones matter for
// safety; the common local ones are listed so doctor can name them.
var magic = map[uint32]Info{
	// Network and remote filesystems.
	0x6969:     {"nfs", KindNetwork},
	0x517b:     {"smb", KindNetwork},
	0xff534d42: {"cifs", KindNetwork},
	0xfe534d42: {"smb2", KindNetwork},
	0x01021997: {"9p", KindNetwork},
	0x5346414f: {"afs", KindNetwork},
	0x6b414653: {"afs", KindNetwork},
	0x00c36400: {"ceph", KindNetwork},
	0x0bd00bd0: {"lustre", KindNetwork},
	0x47504653: {"gpfs", KindNetwork},
	0x564c:     {"ncp", KindNetwork},
	0x73757245: {"coda", KindNetwork},
	0x20030528: {"orangefs", KindNetwork},
	0x786f4256: {"vboxsf", KindNetwork},
	0x19830326: {"fhgfs", KindNetwork},
	0xaad7aaea: {"panfs", KindNetwork},
	// Shared-disk cluster filesystems.
	0x01161970: {"gfs2", KindCluster},
	0x7461636f: {"ocfs2", KindCluster},
	// Userspace filesystems (sshfs, rclone, virtiofs, ...).
	0x65735546: {"fuse", KindFUSE},
	// Local filesystems.
	0xef53:     {"ext4", KindLocal}, // ext2/ext3/ext4 share the magic
	0x58465342: {"xfs", KindLocal},
	0x9123683e: {"btrfs", KindLocal},
	0x01021994: {"tmpfs", KindLocal},
	0x858458f6: {"ramfs", KindLocal},
	0x2fc12fc1: {"zfs", KindLocal},
	0xf2f52010: {"f2fs", KindLocal},
	0x794c7630: {"overlayfs", KindLocal},
	0xca451a4e: {"bcachefs", KindLocal},
	0x52654973: {"reiserfs", KindLocal},
	0x3153464a: {"jfs", KindLocal},
	0x4d44:     {"vfat", KindLocal},
	0x2011bab0: {"exfat", KindLocal},
	0x5346544e: {"ntfs", KindLocal},
	0x7366746e: {"ntfs3", KindLocal},
	0x482b:     {"hfsplus", KindLocal},
	0x3434:     {"nilfs", KindLocal},
	0xf15f:     {"ecryptfs", KindLocal},
	0xe0f5e1e2: {"erofs", KindLocal},
	0x73717368: {"squashfs", KindLocal},
}

func classifyMagic(m uint32) Info {
	if i, ok := magic[m]; ok {
		return i
	}
	return Info{Type: fmt.Sprintf("0x%x", m), Kind: KindUnknown}
}
