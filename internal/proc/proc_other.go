//go:build !linux && !darwin && !windows

package proc

// StartSupported is false: this platform is not supported for liveness.
const StartSupported = false

// StartToken returns "" and nil for any positive pid: existence cannot be
// checked here.
func StartToken(pid int) (string, error) {
	if pid <= 0 {
		return "", invalidPID(pid)
	}
	return "", nil
}

// Check always returns Unknown on unsupported platforms.
func Check(int, string) Liveness { return Unknown }

// Group is Unknown where processes cannot be inspected.
func Group(int, string) Liveness { return Unknown }
