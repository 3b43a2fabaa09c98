package rootdir

import (
	"errors"
	"path/filepath"
)

// userStateDir is where macOS keeps per-user application data.
func userStateDir(getenv func(string) string) (string, error) {
	home := getenv("HOME")
	if !filepath.IsAbs(home) {
		return "", errors.New("$HOME is not set to an absolute path")
	}
	return filepath.Join(home, "Library", "Application Support"), nil
}
