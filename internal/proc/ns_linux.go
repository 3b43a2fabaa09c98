package proc

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

// namespace is read once: a process never changes PID namespace.
var namespace = sync.OnceValue(func() string {
	// "pid:[4026531836]": the inode number names the namespace host-wide.
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	ns := strings.TrimSuffix(strings.TrimPrefix(link, "pid:["), "]")
	if ns == link {
		return ""
	}
	return ns
})

// Namespace identifies the PID namespace this process lives in ("" where
// it cannot be told). Pids of a holder in another namespace mean nothing
// here, however they look.
func Namespace() string { return namespace() }

// procIsOurs reports whether /proc shows this process's own PID namespace.
// After `unshare --pid --fork` without --mount-proc it does not: pid 1 in
// /proc is the host's init, not us, and every pid read there would be
// someone else's. Read once, like the namespace itself.
var procIsOurs = sync.OnceValue(func() bool {
	self, err := os.Readlink(procRoot + "/self")
	return err == nil && self == strconv.Itoa(os.Getpid())
})
