package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lokt-dev/lokt"
)

// runStatusWatch is `lokt status [NAME] --watch`: the status view, redrawn
// after every change the store reports (the notification that wakes
// waiters), until Ctrl-C. On a terminal it redraws the screen; elsewhere it
// prints one line per visible change, so a log or a test can follow it.
func runStatusWatch(ctx context.Context, f *Factory, opts *StatusOptions) error {
	root, err := f.Root(true)
	if err != nil {
		return err
	}
	ctx, _ = interruptContext(ctx)
	changes, err := root.Changes(ctx, opts.Name)
	if err != nil {
		return err
	}
	last := ""
	for {
		// Read after subscribing, so no change between the two is missed.
		s, err := watchSnapshot(ctx, root, opts.Name)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if f.IO.StdoutTTY {
			var b bytes.Buffer
			sf := &Factory{IO: &IOStreams{Out: &b}}
			printStatus(sf, s)
			fmt.Fprintf(f.IO.Out, "\x1b[H\x1b[2J%s\nwatching %s; Ctrl-C to stop\n", b.String(), watchTarget(opts.Name, s.Dir))
		} else if line := watchLine(s); line != last {
			fmt.Fprintf(f.IO.Out, "%s %s\n", time.Now().Format("15:04:05.000"), line)
			last = line
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
		}
	}
}

func watchTarget(name, dir string) string {
	if name == "" {
		return dir
	}
	return name
}

// watchSnapshot reads the view status prints.
func watchSnapshot(ctx context.Context, root *lokt.Root, name string) (*statusJSON, error) {
	s := &statusJSON{Location: lokt.Location{Dir: root.Dir()}, Locks: []lockJSON{}, Freezes: []*lokt.Freeze{}}
	if name != "" {
		st, err := root.Get(ctx, name)
		switch {
		case errors.Is(err, lokt.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			s.Locks = append(s.Locks, toLockJSON(st))
		}
		if fr, err := root.GetFreeze(ctx, name); err == nil {
			s.Freezes = append(s.Freezes, fr)
		}
		return s, nil
	}
	list, err := root.List(ctx)
	for _, st := range list {
		s.Locks = append(s.Locks, toLockJSON(st))
	}
	fr, ferr := root.Freezes(ctx)
	s.Freezes = append(s.Freezes, fr...)
	return s, errors.Join(err, ferr)
}

// watchLine is the one-line form of a status view: who holds each name,
// and who waits in which order.
func watchLine(s *statusJSON) string {
	var parts []string
	for _, l := range s.Locks {
		var b strings.Builder
		b.WriteString(l.Name + ": ")
		switch {
		case l.Holders != nil:
			switch l.Mode {
			case lokt.ModeSlots:
				fmt.Fprintf(&b, "%d/%d slots", len(l.Holders), l.Slots)
			case lokt.ModeShared:
				fmt.Fprintf(&b, "%d shared", len(l.Holders))
			default:
				fmt.Fprintf(&b, "%d exclusive", len(l.Holders))
			}
			for i, h := range l.Holders {
				sep := ", "
				if i == 0 {
					sep = " "
				}
				fmt.Fprintf(&b, "%s%s pid %d %s", sep, holderText(h.Lock), h.PID, h.State)
			}
		case l.LockID == "":
			b.WriteString(string(l.State))
		default:
			fmt.Fprintf(&b, "held by %s pid %d %s", holderText(l.Lock), l.PID, l.State)
		}
		if len(l.Waiters) > 0 {
			b.WriteString("; waiting:")
			for _, w := range l.Waiters {
				fmt.Fprintf(&b, " #%d %s pid %d (%s)", w.Position, waiterText(w), w.PID, wantText(w))
			}
		}
		parts = append(parts, b.String())
	}
	for _, fr := range s.Freezes {
		parts = append(parts, fmt.Sprintf("%s: frozen by %s@%s", fr.Name, fr.Owner, fr.Host))
	}
	if len(parts) == 0 {
		return "free"
	}
	return strings.Join(parts, " | ")
}
