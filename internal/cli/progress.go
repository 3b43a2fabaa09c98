package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/lokt-dev/lokt"
)

// progress tells a waiting user what they are waiting for: nothing during
// the first second (most waits end sooner), then a line redrawn in place on
// a terminal, or a new line every ten seconds in logs. It is fed by
// AcquireOptions.OnBlocked, which the engine calls at every recheck (at
// least twice a second), so it needs no timer of its own.
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
		// \r and erase-line redraw in place; the message is kept to one
		// line, since a wrapped line could not be erased this way.
		fmt.Fprintf(p.io.ErrOut, "\r\033[K%s", msg)
	} else {
		fmt.Fprintln(p.io.ErrOut, "lokt: "+msg)
	}
	p.printed = true
}

// done clears the in-place line, so what runs next starts on a clean one.
func (p *progress) done() {
	if p.printed && p.io.StderrTTY {
		fmt.Fprint(p.io.ErrOut, "\r\033[K")
	}
	p.printed = false
}

func blockerText(err error, now time.Time) string {
	var held *lokt.HeldError
	var frozen *lokt.FrozenError
	switch {
	case errors.As(err, &held):
		l := held.Lock
		return fmt.Sprintf("held by %s for %s", holderWithPID(l), shortDur(now.Sub(l.AcquiredAt)))
	case errors.As(err, &frozen):
		fr := frozen.Freeze
		s := fmt.Sprintf("frozen by %s for %s more", labelText(fr.Owner, fr.Host, fr.AgentID), shortDur(fr.ExpiresAt.Sub(now)))
		if fr.Reason != "" {
			s += " (" + printable(fr.Reason) + ")"
		}
		return s
	}
	return printableError(err, err.Error())
}
