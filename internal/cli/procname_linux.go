package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// processName is the kernel's short name of a running process (at most 15
// bytes, from /proc/PID/comm), or "" when it cannot be read. It is only for
// messages: a process may rename itself.
func processName(pid int) string {
	if pid <= 0 {
		return ""
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
