//go:build unix

package doctor

import (
	"os"
	"syscall"
	"testing"

	"github.com/lokt-dev/lokt/internal/fsinfo"
)

// TestSharedRoot: a setgid root is checked against the documented shared
// set-up: group access, nothing for others, and a umask that keeps group
// write.
func TestSharedRoot(t *testing.T) {
	unixOnly(t)
	simulate(t, "ext4", fsinfo.KindLocal)
	dir := newRoot(t)
	if err := os.Chmod(dir, 0o770|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode()&os.ModeSetgid == 0 {
		t.Skipf("cannot set the setgid bit here (%v)", err)
	}
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	want(t, run(t, dir), CheckRootPerms, OK, "setgid", "0660")

	syscall.Umask(0o022)
	want(t, run(t, dir), CheckRootPerms, Warn, "umask 0022", "umask 002", "shared-roots")
	syscall.Umask(0o002)

	if err := os.Chmod(dir, 0o775|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	want(t, run(t, dir), CheckRootPerms, Warn, "lets other users in", "chmod o-rwx")
	if err := os.Chmod(dir, 0o750|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	want(t, run(t, dir), CheckRootPerms, Warn, "does not give the group full access", "chmod g+rwx")
}
