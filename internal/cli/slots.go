package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/lokt-dev/lokt"
)

// addSlotFlags gives lock and guard --slots N and --shared.
func addSlotFlags(cmd *cobra.Command, slots *string, shared *bool) {
	cmd.Flags().StringVar(slots, "slots", "", fmt.Sprintf("allow up to N holders of NAME at once (1-%d); every holder must give the same N", lokt.MaxSlots))
	cmd.Flags().BoolVar(shared, "shared", false, "hold NAME shared: any number of shared holders, no exclusive one meanwhile")
}

// slotsFlag parses --slots (0 when absent) and checks it against --shared.
func slotsFlag(cmd *cobra.Command, value string, shared bool) (int, error) {
	if !cmd.Flags().Changed("slots") {
		return 0, nil
	}
	if shared {
		return 0, usageError("--slots and --shared do not go together: --slots N admits N holders of any kind, --shared admits any number of shared ones")
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 || n > lokt.MaxSlots {
		return 0, usageError("--slots must be a whole number from 1 to %d (got %q)", lokt.MaxSlots, value)
	}
	return n, nil
}

// modeText describes how a lock is held, for messages: "" when exclusive.
func modeText(l *lokt.Lock) string {
	switch l.Mode {
	case lokt.ModeShared:
		return "shared, "
	case lokt.ModeSlots:
		return fmt.Sprintf("one of %d slots, ", l.Slots)
	}
	return ""
}

// printLine prints a name held shared or in slots, or with a line: one row
// per holder, then one per waiter in line order.
func printLine(w io.Writer, l lockJSON, now time.Time) {
	for i, h := range l.Holders {
		state := string(h.State)
		switch h.Mode {
		case lokt.ModeSlots:
			state += fmt.Sprintf(" (slot %d of %d)", i+1, h.Slots)
		case lokt.ModeShared:
			state += " (shared)"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", l.Name, holderText(h.Lock), h.PID, ago(now, h.AcquiredAt), left(now, h.ExpiresAt), state)
	}
	printWaiters(w, l, now)
}

// printWaiters prints one row per waiter of a name, in line order.
func printWaiters(w io.Writer, l lockJSON, now time.Time) {
	for _, wt := range l.Waiters {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", l.Name, waiterText(wt), wt.PID, ago(now, wt.Since), "-", waitState(wt))
	}
}

func waiterText(w lokt.Waiter) string {
	s := w.Owner + "@" + w.Host
	if w.AgentID != "" {
		s += " (" + w.AgentID + ")"
	}
	return s
}

// waitState says where a waiter stands and what it wants.
func waitState(w lokt.Waiter) string {
	return fmt.Sprintf("waiting #%d (%s)", w.Position, wantText(w))
}

func wantText(w lokt.Waiter) string {
	if w.Mode == lokt.ModeSlots {
		return fmt.Sprintf("a slot of %d", w.Slots)
	}
	return w.Mode
}

// lineReasons explains a name held shared or in slots, or with a line, to
// `lokt why`: an exclusive acquirer waits for every holder and every
// waiter ahead.
func lineReasons(l lockJSON, now time.Time) []string {
	var out []string
	switch {
	case len(l.Holders) == 0:
		out = append(out, "nobody holds it, but processes wait in line for it and go first")
	case l.Mode == lokt.ModeSlots:
		out = append(out, fmt.Sprintf("%d of its %d slots are taken; an exclusive lock waits for all of them (a holder with --slots %d takes a free slot)", len(l.Holders), l.Slots, l.Slots))
	case l.Mode == lokt.ModeShared:
		out = append(out, fmt.Sprintf("it has %d shared holder(s); an exclusive lock waits for all of them (--shared joins them unless an exclusive waiter is in line)", len(l.Holders)))
	}
	for i, h := range l.Holders {
		s := fmt.Sprintf("holder %d: %s pid %d since %s (%s), %s", i+1, holderText(h.Lock), h.PID, h.AcquiredAt.Local().Format(time.RFC3339), shortDur(now.Sub(h.AcquiredAt)), h.State)
		if h.ExpiresAt != nil {
			s += ", expires in " + shortDur(h.ExpiresAt.Sub(now))
		}
		out = append(out, s)
	}
	for _, w := range l.Waiters {
		out = append(out, waiterReason(w, now))
	}
	out = append(out, "wait in line with --wait; lokt unlock "+l.Name+" releases only your own entry, --force breaks every holder")
	return out
}

func waiterReason(w lokt.Waiter, now time.Time) string {
	return fmt.Sprintf("waiting #%d: %s pid %d since %s (%s), wants %s", w.Position, waiterText(w), w.PID, w.Since.Local().Format(time.RFC3339), shortDur(now.Sub(w.Since)), wantText(w))
}

// waiterReasons lists the waiters of a plain exclusive lock for `lokt why`.
func waiterReasons(ws []lokt.Waiter, now time.Time) []string {
	if len(ws) == 0 {
		return nil
	}
	out := []string{fmt.Sprintf("%d process(es) already wait for it, in arrival order (whichever retries first once it is free gets it, so the order is rough):", len(ws))}
	for _, w := range ws {
		out = append(out, waiterReason(w, now))
	}
	return out
}
