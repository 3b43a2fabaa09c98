package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGenerate checks what the packages ship: three completion scripts for
// lokt, a man page per command, and the same bytes on a second run.
func TestGenerate(t *testing.T) {
	when := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	out := t.TempDir()
	if err := generate(out, when); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"lokt.bash": "__start_lokt",
		"_lokt":     "#compdef lokt",
		"lokt.fish": "complete -c lokt",
	} {
		b, err := os.ReadFile(filepath.Join(out, "completions", name))
		if err != nil || !bytes.Contains(b, []byte(want)) {
			t.Errorf("completions/%s: %v, want it to contain %q", name, err, want)
		}
	}
	for _, cmd := range []string{"lokt", "lokt-lock", "lokt-guard", "lokt-freeze", "lokt-doctor"} {
		page := readGz(t, filepath.Join(out, "manpages", cmd+".1.gz"))
		if !strings.Contains(page, `.TH "LOKT" "1" "Dec 2026"`) || strings.Contains(page, "Auto generated") {
			t.Errorf("%s.1: unexpected header or build stamp:\n%.300s", cmd, page)
		}
	}
	if !strings.Contains(readGz(t, filepath.Join(out, "manpages", "lokt-lock.1.gz")), "conflict-exit-code") {
		t.Error("lokt-lock.1 does not document --conflict-exit-code")
	}
	again := t.TempDir()
	if err := generate(again, when); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*", "*"))
	for _, f := range files {
		rel, _ := filepath.Rel(out, f)
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(again, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs (%v)", rel, err)
		}
	}
}

func TestPageDate(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "86400")
	if d, err := pageDate(""); err != nil || !d.Equal(time.Unix(86400, 0)) {
		t.Errorf("pageDate from SOURCE_DATE_EPOCH = %v, %v", d, err)
	}
	if d, err := pageDate("2026-12-01T10:00:00Z"); err != nil || d.Year() != 2026 {
		t.Errorf("pageDate(RFC 3339) = %v, %v", d, err)
	}
	if _, err := pageDate("yesterday"); err == nil {
		t.Error("pageDate accepted a bad date")
	}
}

func readGz(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
