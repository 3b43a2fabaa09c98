//go:build windows

package proc

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows"
)

// StartSupported is false: lokt records no start token on Windows, so a
// reused pid cannot be detected there.
const StartSupported = false

// stillActive is STILL_ACTIVE, the exit code of a running process.
const stillActive = 259

// StartToken returns "" and nil if process pid exists, ErrNoProcess if it
// has exited or never existed.
func StartToken(pid int) (string, error) {
	if pid <= 0 {
		return "", invalidPID(pid)
	}
	gone, err := exited(pid)
	if err != nil {
		return "", err
	}
	if gone {
		return "", ErrNoProcess
	}
	return "", nil
}

// Check returns Dead when process pid has provably exited and Unknown
// otherwise: without start times a running pid may have been reused.
func Check(pid int, _ string) Liveness {
	if pid <= 0 {
		return Unknown
	}
	if gone, err := exited(pid); err == nil && gone {
		return Dead
	}
	return Unknown
}

// exited reports whether pid is known to have exited.
func exited(pid int) (bool, error) {
	if pid > maxPID {
		return true, nil
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid)) // #nosec G115 -- 0 < pid <= maxPID
	switch {
	case errors.Is(err, windows.ERROR_INVALID_PARAMETER):
		// Windows' answer for a pid that names no process.
		return true, nil
	case errors.Is(err, windows.ERROR_ACCESS_DENIED):
		// Someone else's live process.
		return false, nil
	case err != nil:
		return false, fmt.Errorf("proc: OpenProcess(%d): %w", pid, err)
	}
	defer func() { _ = windows.CloseHandle(h) }()
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return false, fmt.Errorf("proc: GetExitCodeProcess(%d): %w", pid, err)
	}
	// A process that exited with code 259 reads as running: erring towards
	// alive is the safe side.
	return code != stillActive, nil
}

// Group is Unknown on Windows: there are no process groups to ask about,
// and guard's command tree is judged by its kernel lock alone.
func Group(int, string) Liveness { return Unknown }
