package cli

import (
	"context"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// interruptContext ends ctx on SIGINT, SIGTERM or SIGHUP, so a wait stops
// cleanly. The returned func reports the signal number received (0 if none),
// for the 128+N exit code.
func interruptContext(parent context.Context) (context.Context, func() int) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	var got atomic.Int64
	go func() {
		select {
		case s := <-ch:
			if n, ok := s.(syscall.Signal); ok {
				got.Store(int64(n))
			}
			cancel()
		case <-ctx.Done():
		}
		signal.Stop(ch)
	}()
	return ctx, func() int { return int(got.Load()) }
}
