package audit

import (
	"fmt"
	"io"
	"sync"

	"github.com/lokt-dev/lokt"
)

// Observer returns an event sink for lokt.WithObserver that appends every
// event to the audit log of the lock root dir, with rotation configured from
// getenv (see ConfigFromEnv).
//
// It never fails the operation that caused the event: the engine calls it
// after the change is stored, it returns nothing, and a write error is
// reported once per process on warn ("lokt: warning: ...") and otherwise
// ignored. The log is opened on the first event and kept open.
func Observer(dir string, getenv func(string) string, warn io.Writer) func(lokt.Event) {
	var (
		once sync.Once
		log  *Log
		mu   sync.Mutex
		told bool
	)
	tell := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if told {
			return
		}
		told = true
		fmt.Fprintf(warn, "lokt: warning: %v; the lock operation itself is not affected\n", err)
	}
	return func(e lokt.Event) {
		once.Do(func() {
			cfg, err := ConfigFromEnv(getenv)
			if err != nil {
				fmt.Fprintf(warn, "lokt: warning: %v\n", err)
			}
			log = New(dir, cfg)
		})
		rec := FromEvent(e)
		if err := log.Append(&rec); err != nil {
			tell(fmt.Errorf("audit log not written: %w", err))
		}
	}
}
