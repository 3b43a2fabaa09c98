//go:build unix && !darwin

package rootdir

import (
	"errors"
	"path/filepath"
)

// userStateDir follows the XDG base directory rules: $XDG_STATE_HOME if
// absolute (the spec says to ignore a relative one), else ~/.local/state.
func userStateDir(getenv func(string) string) (string, error) {
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Clean(x), nil
	}
	home := getenv("HOME")
	if !filepath.IsAbs(home) {
		return "", errors.New("$HOME is not set to an absolute path")
	}
	return filepath.Join(home, ".local", "state"), nil
}
