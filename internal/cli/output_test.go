package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lokt-dev/lokt"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                      "alice",
		"José 日本 🙂 a\\b \"q\"":       "José 日本 🙂 a\\b \"q\"", // printable Unicode, backslashes and quotes stay
		"\x1b]0;TITLE\a\x1b[2J":      `\x1b]0;TITLE\a\x1b[2J`,
		"a\nb\tc\rd\x7f\x00":         `a\nb\tc\rd\x7f\x00`,
		"csi\u009b2J":                `csi\u009b2J`, // C1 control
		"evil\u202eexe.txt":          `evil\u202eexe.txt`,
		"line\u2028sep":              `line\u2028sep`,
		"bad\xff\xfeutf8":            `bad\xff\xfeutf8`,
		"nbsp\u00a0zwsp\u200b":       `nbsp\u00a0zwsp\u200b`,
		"\U000e0041 tag":             `\U000e0041 tag`,
		"":                           "",
		"already \\x1b escaped text": "already \\x1b escaped text",
	} {
		got := printable(in)
		if got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
		if again := printable(got); again != got {
			t.Errorf("printable is not idempotent on %q: %q", got, again)
		}
	}
}

type label string

func TestSprintText(t *testing.T) {
	got := sprintText("%s|%v|%d|%s|%q\n\t", "a\x1bb", errors.New("e\x07"), 42, label("l\x1b"), "n")
	if want := `a\x1bb|e\a|42|l\x1b|"n"` + "\n\t"; got != want {
		t.Errorf("sprintText = %q, want %q", got, want)
	}
}

// TestPrintableError: a label's newline is escaped, lokt's own line breaks
// are kept.
func TestPrintableError(t *testing.T) {
	l := &lokt.Lock{Name: "x", Owner: "o\nFAKE", Holder: lokt.Holder{Host: "h\x1b[2J", PID: 7}, AgentID: "a"}
	err := &lokt.HeldError{Lock: l}
	got := errorText(err)
	want := `lock "x" is held by o\nFAKE@h\x1b[2J (agent a)`
	if len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("errorText = %q, want it to start with %q", got, want)
	}
	if n := countLines(got); n != 2 {
		t.Errorf("errorText has %d lines, want 2 (message and advice): %q", n, got)
	}
}

func countLines(s string) int {
	n := 1
	for _, r := range s {
		if r == '\n' {
			n++
		}
	}
	return n
}

// TestBlockerTextEscapes: the progress line of a waiting lock shows other
// users' labels escaped too.
func TestBlockerTextEscapes(t *testing.T) {
	now := time.Now()
	l := &lokt.Lock{Name: "x", Owner: "o\x1b[2J", Holder: lokt.Holder{Host: "h", PID: 7}, AcquiredAt: now}
	fr := &lokt.Freeze{Name: "x", Owner: "f\x1b]0;T\a", Host: "h", Reason: "r\x1b[31m", ExpiresAt: now.Add(time.Minute)}
	for _, err := range []error{&lokt.HeldError{Lock: l, Now: now}, &lokt.FrozenError{Freeze: fr, Now: now}} {
		got := blockerText(err, now)
		if strings.ContainsAny(got, "\x1b\a") {
			t.Errorf("blockerText(%T) = %q: raw control characters", err, got)
		}
		if !strings.Contains(got, `\x1b`) {
			t.Errorf("blockerText(%T) = %q: no escaped label", err, got)
		}
		if got := errorText(err); strings.ContainsAny(got, "\x1b\a") {
			t.Errorf("errorText(%T) = %q: raw control characters", err, got)
		}
	}
}
