package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/lokt-dev/lokt"
)

// progress tells a waiting user what they are waiting for: nothing during
// the first second (most waits end sooner), then a line redrawn in place on
// a terminal, or a new line every ten seconds in logs.
type progress struct {
	io      *IOStreams
	name    string
	start   time.Time
	last    time.Time
	printed bool
}

const (
	progressDelay   = time.Second
	progressLogStep = 10 * time.Second
)

func newProgress(io *IOStreams, name string) *progress {
	return &progress{io: io, name: name, start: time.Now()}
}

func (p *progress) update(blocker error) {
	now := time.Now()
	if now.Sub(p.start) < progressDelay {
		return
	}
	if !p.io.StderrTTY && p.printed && now.Sub(p.last) < progressLogStep {
		return
	}
	p.last = now
	msg := fmt.Sprintf("waiting %s for %q: %s", shortDur(now.Sub(p.start)), p.name, blockerText(blocker, now))
	if p.io.StderrTTY {
		fmt.Fprintf(p.io.ErrOut, "\r\033[K%s", msg)
	} else {
		fmt.Fprintln(p.io.ErrOut, msg)
	}
	p.printed = true
}

func (p *progress) done() {
	if p.printed && p.io.StderrTTY {
		fmt.Fprint(p.io.ErrOut, "\r\033[K")
	}
}

func blockerText(err error, now time.Time) string {
	var held *lokt.HeldError
	var frozen *lokt.FrozenError
	switch {
	case errors.As(err, &held):
		l := held.Lock
		return fmt.Sprintf("held by %s pid %d for %s", holderText(l), l.PID, shortDur(now.Sub(l.AcquiredAt)))
	case errors.As(err, &frozen):
		return fmt.Sprintf("frozen by %s for %s more", frozen.Freeze.Owner, shortDur(frozen.Freeze.ExpiresAt.Sub(now)))
	}
	return err.Error()
}
