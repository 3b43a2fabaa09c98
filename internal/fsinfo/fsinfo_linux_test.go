package fsinfo

import "testing"

func TestClassifyMagic(t *testing.T) {
	for magic, want := range map[uint32]Info{
		0x6969:     {"nfs", KindNetwork},
		0xff534d42: {"cifs", KindNetwork},
		0xfe534d42: {"smb2", KindNetwork},
		0x01021997: {"9p", KindNetwork},
		0x65735546: {"fuse", KindFUSE},
		0x7461636f: {"ocfs2", KindCluster},
		0xef53:     {"ext4", KindLocal},
		0x01021994: {"tmpfs", KindLocal},
		0x794c7630: {"overlayfs", KindLocal},
		0x12345678: {"0x12345678", KindUnknown},
	} {
		if got := classifyMagic(magic); got != want {
			t.Errorf("classifyMagic(%#x) = %v, want %v", magic, got, want)
		}
	}
}
