package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/lokt-dev/lokt"
)

// lockJSON is the --json shape of one lock: the protocol's fields plus the
// judgement (state) made now.
type lockJSON struct {
	*lokt.Lock
	TTLSec  int64      `json:"ttl_sec"`
	State   lokt.State `json:"state"`
	Problem string     `json:"problem,omitempty"`
	// For names held shared or in slots, or with a line: every holder and
	// every waiter in line order.
	Holders []lokt.HolderState `json:"holders,omitempty"`
	Waiters []lokt.Waiter      `json:"waiters,omitempty"`
}

func toLockJSON(st *lokt.Status) lockJSON {
	out := lockJSON{Lock: st.Lock, State: st.State}
	if st.Lock == nil {
		out.Lock = &lokt.Lock{Name: st.Name}
	} else {
		out.TTLSec = int64(st.Lock.TTL / time.Second)
	}
	if st.Problem != nil {
		out.Problem = st.Problem.Error()
	}
	if st.Mode != lokt.ModeExclusive && st.Mode != "" || len(st.Waiters) > 0 {
		out.Holders, out.Waiters = st.Holders, st.Waiters
		if out.Holders == nil {
			out.Holders = []lokt.HolderState{}
		}
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ago renders a past instant relative to now for tables. A time in the
// future can only come from a clock that was ahead when it was written.
func ago(now, t time.Time) string {
	if d := now.Sub(t); d < 0 {
		return "in " + shortDur(-d) + " (clock skew?)"
	}
	return shortDur(now.Sub(t))
}

// left renders time until an optional expiry.
func left(now time.Time, t *time.Time) string {
	if t == nil {
		return "-"
	}
	d := t.Sub(now)
	if d <= 0 {
		return "expired " + shortDur(-d) + " ago"
	}
	return shortDur(d)
}

// shortDur prints durations the way people read them in a table: 45s,
// 3m12s, 2h05m, 3d04h.
func shortDur(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func holderText(l *lokt.Lock) string {
	s := l.Owner + "@" + l.Host
	if l.AgentID != "" {
		s += " (" + l.AgentID + ")"
	}
	return s
}

// holderWithPID is holderText plus the process, or that there is none.
func holderWithPID(l *lokt.Lock) string {
	if l.PID == 0 {
		return holderText(l) + " (no process)"
	}
	return fmt.Sprintf("%s pid %d", holderText(l), l.PID)
}
