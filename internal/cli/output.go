package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lokt-dev/lokt"
)

// lockJSON is the --json shape of one lock: the protocol's fields plus the
// judgement (state) made now.
type lockJSON struct {
	*lokt.Lock
	TTLSec  int64      `json:"ttl_sec"`
	State   lokt.State `json:"state"`
	Problem string     `json:"problem,omitempty"`
	// For names held shared or in slots, or with a line in their record:
	// every holder. Waiters (of any name) in line order.
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
	out.Waiters = st.Waiters
	// A version 1 record's one holder is the lock itself: listing it again
	// under holders would change what scripts that read a plain exclusive
	// lock's fields (its token) have always seen.
	if st.Version == lokt.MultiVersion {
		out.Holders = st.Holders
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

// labelText renders who a lock or freeze belongs to: owner@host, plus the
// agent id when there is one. Every part is a label someone else chose, so
// it is made printable (see printable).
func labelText(owner, host, agentID string) string {
	s := printable(owner) + "@" + printable(host)
	if agentID != "" {
		s += " (agent " + printable(agentID) + ")"
	}
	return s
}

// holderText is a lock's labels: owner@host (agent id).
func holderText(l *lokt.Lock) string { return labelText(l.Owner, l.Host, l.AgentID) }

// holderWithPID is holderText plus the process, or that there is none.
func holderWithPID(l *lokt.Lock) string {
	if l.PID == 0 {
		return holderText(l) + " (no process)"
	}
	return fmt.Sprintf("%s pid %d", holderText(l), l.PID)
}

// printable returns s as it is safe to show on someone's terminal. Owner
// labels, agent ids, host names, reasons and metadata are chosen by other
// users, and a control sequence in one (ESC ] to set a window title, ESC [2J
// to clear the screen) would act on the reader's terminal. Control
// characters, other non-printing runes (bidirectional overrides, line
// separators) and invalid UTF-8 are shown Go-escaped: \x1b, \a, \n,
// \u202e, \xff. Printable text, non-ASCII included, is kept as is, and so are
// backslashes: the result is readable rather than reversible, and printable
// of it changes nothing, so text can pass through it twice.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !isPrintable(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case isPrintable(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\a', '\u202e': drop the quotes
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

func isPrintable(r rune) bool { return r == ' ' || unicode.IsPrint(r) }

// printableLines is printable for a message of several lines: each line is
// escaped, the line breaks between them are kept.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return strings.Join(lines, "\n")
}

// textf formats text for a terminal: like fmt.Sprintf, but every string
// argument (and error, or value of a string type) goes through
// printable first. The format's own layout (\n, \t) is kept. Every line the
// CLI prints with data in it is built by textf or the helpers above.
func textf(w io.Writer, format string, args ...any) {
	fmt.Fprint(w, sprintText(format, args...))
}

// sprintText is textf returning the string.
func sprintText(format string, args ...any) string {
	safe := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			safe[i] = printable(v)
		case error:
			safe[i] = printable(v.Error())
		default:
			if rv := reflect.ValueOf(a); rv.Kind() == reflect.String {
				safe[i] = printable(rv.String())
			} else {
				safe[i] = a
			}
		}
	}
	return fmt.Sprintf(format, safe...)
}
