package rootdir

import (
	"errors"
	"path/filepath"
)

// userStateDir is the per-user, non-roaming application data directory.
func userStateDir(getenv func(string) string) (string, error) {
	d := getenv("LocalAppData")
	if !filepath.IsAbs(d) {
		return "", errors.New("%LocalAppData% is not set to an absolute path")
	}
	return filepath.Clean(d), nil
}
