package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// childSysProcAttr makes the kernel kill the child if guard dies without
// cleaning up (SIGKILL, OOM killer), so it never runs on without the lock.
// Grandchildren are not covered: they outlive it like any orphan. The child
// stays in guard's process group so it keeps the terminal.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// parentPID reads field 4 (ppid) of /proc/PID/stat. The command name before
// it may contain spaces and ')', so fields are counted after the last ')'.
func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 2 {
		return 0, errors.New("malformed /proc stat")
	}
	return strconv.Atoi(string(fields[1]))
}
