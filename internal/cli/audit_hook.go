package cli

import (
	"os"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/audit"
	"github.com/lokt-dev/lokt/internal/fsinfo"
)

// auditObserver is the Factory's default Observer: every event of the root
// goes to its audit.log. A failed audit write is a warning on stderr (once
// per process), never a failed lock operation. Rotation settings come from
// the process environment, like every other LOKT_ variable the log reads.
func auditObserver(root string, io *IOStreams) func(lokt.Event) {
	return audit.Observer(root, os.Getenv, io.ErrOut)
}

// requireLocalFS refuses a root on a network or userspace filesystem when
// LOKT_REQUIRE_LOCAL_FS is set. Factory.Root calls it for the commands that
// create the root to take locks (lock, guard, freeze); the read and release
// commands still work there, so a person can clean up.
func requireLocalFS(getenv func(string) string, dir string) error {
	return fsinfo.CheckRequireLocal(getenv, dir)
}
