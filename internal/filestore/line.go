package filestore

import (
	"sync"

	"github.com/lokt-dev/lokt/store"
)

const lineExt = ".wait"

// Line implements store.Queue with a second kernel lock per name,
// ROOT/locks/.NAME.wait: a waiter blocks in flock(2) on it, so the kernel
// keeps the line and wakes the next waiter when the head leaves (or dies).
// It is never held across the record's own guard lock, so it cannot
// deadlock with Update.
func (s *Store) Line(k store.Key) (<-chan struct{}, func(), error) {
	dir, err := s.nsDir(k.NS)
	if err != nil {
		return nil, nil, err
	}
	g, err := dir.OpenGuard("."+k.Name+lineExt, filePerm)
	if err != nil {
		return nil, nil, unsafe(err)
	}
	first := make(chan struct{})
	var (
		mu     sync.Mutex
		locked bool // the background Lock has returned
		left   bool
	)
	go func() {
		err := g.Lock()
		mu.Lock()
		defer mu.Unlock()
		locked = true
		if left || err != nil {
			// Our turn came after we gave up (or never will): pass it on.
			_ = g.Unlock()
			return
		}
		close(first)
	}()
	leave := func() {
		mu.Lock()
		defer mu.Unlock()
		if left {
			return
		}
		left = true
		if locked {
			_ = g.Unlock()
		}
		// Otherwise the goroutine is still blocked in flock; closing the
		// descriptor under it is unsafe, so it closes it when it returns.
	}
	return first, leave, nil
}
