package doctor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lokt-dev/lokt/internal/atomicfs"
)

// guardFiles checks the hidden files of locks/: each name's guard file
// (.NAME.lck, which also keeps its fencing counter) and waiting-line file
// (.NAME.wait) must be a regular file, and a counter must be readable, or
// lock operations on the name fail. It reads, never locks or repairs.
func (d *doctor) guardFiles() verdict {
	if !d.ready {
		return d.skipped()
	}
	dir, err := atomicfs.OpenDir(d.locksDir(), false, 0)
	if err != nil {
		return fail(fmt.Sprintf("cannot open %s: %v", d.locksDir(), err), "restore the directory lokt created")
	}
	defer func() { _ = dir.Close() }()
	names, err := dir.ReadDirNames()
	if err != nil {
		return fail(fmt.Sprintf("cannot list %s: %v", d.locksDir(), err), "check the permissions of the lock root")
	}
	sort.Strings(names)
	var bad, counters []string
	for _, n := range names {
		guard := strings.HasSuffix(n, ".lck")
		if !strings.HasPrefix(n, ".") || !guard && !strings.HasSuffix(n, ".wait") || strings.HasPrefix(n, probePrefix) {
			continue
		}
		path := filepath.Join(d.locksDir(), n)
		m, err := dir.Type(n)
		if err != nil {
			continue // removed meanwhile
		}
		if !m.IsRegular() {
			bad = append(bad, fmt.Sprintf("%s is a %s", path, atomicfs.Kind(m)))
			continue
		}
		if !guard {
			continue
		}
		data, err := dir.ReadFile(n)
		if err == nil {
			_, err = atomicfs.ParseCounter(data)
		}
		if errors.Is(err, atomicfs.ErrBadCounter) {
			counters = append(counters, path)
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) == 0 && len(counters) == 0 {
		return ok("every guard file is a regular file with a readable fencing counter")
	}
	var msgs, fixes []string
	if len(bad) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d guard or line file(s) are not regular files, so their names cannot be locked or frozen: %s", len(bad), list(bad, 5)))
		fixes = append(fixes, "move them away when nothing uses those names; lokt recreates them as plain files")
	}
	if len(counters) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d guard file(s) hold no readable fencing counter, so their names issue no token: %s", len(counters), list(counters, 5)))
		fixes = append(fixes, "write a number above every token ever issued for the name (see lokt audit), e.g. printf '%020d\\n' 1000000 > FILE")
	}
	return fail(strings.Join(msgs, "; "), strings.Join(fixes, "; "))
}
