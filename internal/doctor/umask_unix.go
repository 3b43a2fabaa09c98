//go:build unix

package doctor

import (
	"os"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// umask reads this process's umask. umask(2) can only be read by setting
// it, so it is set back at once; doctor creates no file meanwhile.
func umask() (int, bool) {
	old := unix.Umask(0o077)
	unix.Umask(old)
	return old, true
}

// groupName names the group owning a file, or gives its gid.
func groupName(st os.FileInfo) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "?"
	}
	gid := strconv.FormatUint(uint64(sys.Gid), 10)
	if g, err := user.LookupGroupId(gid); err == nil {
		return g.Name
	}
	return gid
}
