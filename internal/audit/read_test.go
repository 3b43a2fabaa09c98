package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeLog(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func recLine(t *testing.T, name string, n int) string {
	t.Helper()
	b, err := testRec(name, n).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScanMissingLog(t *testing.T) {
	st, err := Scan(filepath.Join(t.TempDir(), "no-root"), func([]byte, *Record) error {
		t.Fatal("called for a missing log")
		return nil
	})
	if err != nil || st != (Stats{}) {
		t.Fatalf("missing log: %+v %v", st, err)
	}
	if files, err := Files(t.TempDir()); err != nil || len(files) != 0 {
		t.Fatalf("Files of an empty root: %v %v", files, err)
	}
}

func TestScanSkipsAndCountsDamage(t *testing.T) {
	dir := t.TempDir()
	torn := strings.TrimSuffix(recLine(t, "x", 98), "}\n") // a writer cut off mid-line
	content := recLine(t, "x", 1) +
		"garbage that is not json\n" +
		"\n" + // blank lines are not damage
		`{"valid":"json","but":"not a record"}` + "\n" +
		torn + recLine(t, "x", 2) + // the torn line swallowed the next one's newline-less start
		recLine(t, "x", 3) +
		`{"ts":"2030-01-01T00:00:00Z","event":"acquire","name":"x","token":4}` // last line without newline
	writeLog(t, filepath.Join(dir, FileName), content)
	var raws []string
	st, err := Scan(dir, func(raw []byte, rec *Record) error {
		raws = append(raws, string(raw))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Bad: the garbage, the non-record and the torn prefix. Records: 1, the
	// recovered 2, 3 and the unterminated 4.
	if st.Bad != 3 || st.Records != 4 || len(raws) != 4 {
		t.Fatalf("stats %+v, %d delivered", st, len(raws))
	}
	for _, r := range raws {
		if !strings.HasPrefix(r, `{"ts":`) || strings.Contains(r, "\n") {
			t.Errorf("raw line %q is not one clean record", r)
		}
	}
}

func TestScanTornLastLine(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, filepath.Join(dir, FileName), recLine(t, "x", 1)+`{"ts":"2030-01-01T00:00:00Z","eve`)
	st, err := Scan(dir, func([]byte, *Record) error { return nil })
	if err != nil || st.Records != 1 || st.Bad != 1 {
		t.Fatalf("torn last line: %+v %v", st, err)
	}
}

func TestScanSkipsOverlongLine(t *testing.T) {
	dir := t.TempDir()
	huge := `{"ts":"` + strings.Repeat("x", maxLine+readChunk) + "\n"
	writeLog(t, filepath.Join(dir, FileName), recLine(t, "x", 1)+huge+recLine(t, "x", 2)+strings.Repeat("y", maxLine+10))
	var toks []uint64
	st, err := Scan(dir, func(_ []byte, r *Record) error { toks = append(toks, r.Token); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Bad != 2 || len(toks) != 2 || toks[0] != 1 || toks[1] != 2 {
		t.Fatalf("over-long lines: stats %+v, tokens %v", st, toks)
	}
}

func TestScanHandlerErrorStops(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, filepath.Join(dir, FileName), recLine(t, "x", 1)+recLine(t, "x", 2))
	stop := errors.New("stop")
	calls := 0
	_, err := Scan(dir, func([]byte, *Record) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("handler error: %v after %d calls", err, calls)
	}
	// Also when the failing record is the unterminated last line.
	writeLog(t, filepath.Join(dir, FileName), strings.TrimSuffix(recLine(t, "x", 1), "\n"))
	if _, err := Scan(dir, func([]byte, *Record) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("handler error on the last line: %v", err)
	}
}

func TestScanReadsGenerationsInOrder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeLog(t, genPath(path, 10), recLine(t, "g", 1))
	writeLog(t, genPath(path, 2), recLine(t, "g", 2))
	writeLog(t, genPath(path, 1), recLine(t, "g", 3))
	writeLog(t, path, recLine(t, "g", 4))
	// Not generations: must be ignored.
	writeLog(t, path+".01", recLine(t, "bad", 0))
	writeLog(t, path+".x", recLine(t, "bad", 0))
	writeLog(t, path+".0", recLine(t, "bad", 0))
	writeLog(t, path+".-1", recLine(t, "bad", 0))
	if got := strings.Join(tokens(t, dir), " "); got != "g:1 g:2 g:3 g:4" {
		t.Fatalf("order %s", got)
	}
	files, err := Files(dir)
	if err != nil || len(files) != 4 || files[0] != genPath(path, 10) || files[3] != path {
		t.Fatalf("Files = %v, %v", files, err)
	}
	// Only generations, no current log.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tokens(t, dir), " "); got != "g:1 g:2 g:3" {
		t.Fatalf("order without audit.log: %s", got)
	}
}

func TestParse(t *testing.T) {
	good := strings.TrimSuffix(recLine(t, "p", 5), "\n")
	raw, rec, recovered, err := Parse([]byte(good))
	if err != nil || recovered || rec.Token != 5 || string(raw) != good {
		t.Fatalf("Parse(good) = %q %+v %v %v", raw, rec, recovered, err)
	}
	raw, rec, recovered, err = Parse([]byte(`{"ts":"2030-01-01T00:0` + good))
	if err != nil || !recovered || rec.Token != 5 || string(raw) != good {
		t.Fatalf("Parse(glued) = %q %+v %v %v", raw, rec, recovered, err)
	}
	for _, bad := range []string{"", "{}", "nope", `{"ts":"bad time","event":"x"}`, `{"ts":"2030-01-01T00:00:00Z"}`, `x{"ts":1}`} {
		if _, _, _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q): want an error", bad)
		}
	}
}

func TestLineReaderKeepsPartialLine(t *testing.T) {
	var src bytes.Buffer
	lr := newLineReader(&src)
	src.WriteString("one\ntw")
	if l, err := lr.next(); err != nil || string(l) != "one" {
		t.Fatalf("first line %q %v", l, err)
	}
	if _, err := lr.next(); err == nil {
		t.Fatal("partial line returned before its newline")
	}
	src.WriteString("o\n")
	if l, err := lr.next(); err != nil || string(l) != "two" {
		t.Fatalf("completed line %q %v", l, err)
	}
}
