//go:build linux

package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// StartSupported reports whether this platform can read process start times.
const StartSupported = true

// procRoot is where procfs is mounted.
const procRoot = "/proc"

// noBootID replaces the boot id when it cannot be read. It must be a
// constant: a token that varied between readers would make live holders
// look dead.
const noBootID = "no-boot-id"

// bootID distinguishes boots, so a pid and starttime recorded before a
// reboot never match a process after it. Read once: it cannot change.
var bootID = sync.OnceValue(func() string {
	return readBootID(filepath.Join(procRoot, "sys", "kernel", "random", "boot_id"))
})

func readBootID(path string) string {
	b, err := readSmall(path)
	if err != nil {
		return noBootID
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return noBootID
	}
	return id
}

// StartToken returns an opaque string identifying the start of process pid
// ("<boot_id>:<starttime>"), so a reused pid can be detected. It returns
// ErrNoProcess if pid does not exist or is a zombie.
func StartToken(pid int) (string, error) {
	if pid <= 0 {
		return "", invalidPID(pid)
	}
	if pid > maxPID {
		return "", ErrNoProcess
	}
	if !procIsOurs() {
		return "", errForeignProc
	}
	start, err := readStart(procRoot, pid, signalZero)
	if err != nil {
		return "", err
	}
	return bootID() + ":" + start, nil
}

// BootID is the kernel's id of this boot, and whether it could be read.
func BootID() (string, bool) {
	id := bootID()
	return id, id != noBootID
}

// errForeignProc: /proc belongs to another PID namespace than ours, so
// nothing read there describes our pids (Check then answers Unknown).
var errForeignProc = errors.New("proc: /proc shows another PID namespace (mount a matching /proc, e.g. unshare --mount-proc)")

func signalZero(pid int) error { return unix.Kill(pid, 0) }

// readStart returns field 22 (starttime) of <root>/<pid>/stat. probe is
// kill(pid, 0); it is consulted when the stat file is missing because
// procfs mounted with hidepid hides other users' processes, and a hidden
// process must not be reported as gone.
func readStart(root string, pid int, probe func(int) error) (string, error) {
	path := filepath.Join(root, strconv.Itoa(pid), "stat")
	b, err := readSmall(path)
	if err != nil {
		return "", classifyReadErr(path, pid, err, probe)
	}
	state, start, err := parseStat(b)
	if err != nil {
		return "", fmt.Errorf("proc: %s: %w", path, err)
	}
	if state == 'Z' || state == 'X' {
		// Exited; only its exit status waits to be reaped.
		return "", ErrNoProcess
	}
	return strconv.FormatUint(start, 10), nil
}

func classifyReadErr(path string, pid int, err error, probe func(int) error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ESRCH):
		// ESRCH: the process vanished between open and read.
		perr := probe(pid)
		if errors.Is(perr, unix.ESRCH) {
			return ErrNoProcess
		}
		return fmt.Errorf("proc: pid %d not visible in %s but may exist (kill: %v): %w", pid, path, perr, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("proc: cannot read %s: %w", path, err)
	default:
		return fmt.Errorf("proc: %w", err)
	}
}

// parseStat extracts the state (field 3) and starttime (field 22) from the
// contents of /proc/PID/stat. comm (field 2) is in parentheses and may
// itself contain spaces and ')', so fields are counted after the last ')'.
func parseStat(b []byte) (state byte, start uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed stat: no ')' after comm")
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state), so field 22 is fields[19].
	const startIdx = 22 - 3
	if len(fields) <= startIdx {
		return 0, 0, fmt.Errorf("malformed stat: %d fields after comm, want > %d", len(fields), startIdx)
	}
	if len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("malformed stat: state %q", fields[0])
	}
	start, err = strconv.ParseUint(fields[startIdx], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("malformed stat: starttime: %w", err)
	}
	return fields[0][0], start, nil
}
