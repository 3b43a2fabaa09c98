//go:build lokt_slim && unix

package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

const slim = true

// handOver execs lokt-full with the same arguments; it returns only if that
// fails. lokt-full is looked for beside this binary first, then on PATH.
func handOver(args []string) error {
	path := ""
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), fullBinary); isFile(p) {
			path = p
		}
	}
	if path == "" {
		p, err := exec.LookPath(fullBinary)
		if err != nil {
			return fmt.Errorf("the etcd backend and the MCP server are in %s, which is not installed beside this lokt nor on PATH (the release archives and packages ship it)", fullBinary)
		}
		path = p
	}
	return syscall.Exec(path, append([]string{path}, args...), os.Environ()) //nolint:gosec // our own sibling binary, found beside this one
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && !errors.Is(err, fs.ErrNotExist)
}
