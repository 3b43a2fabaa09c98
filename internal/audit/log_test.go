package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/lockfile"
)

// testRec is a record whose token numbers it, so tests can check order and
// completeness.
func testRec(name string, n int) *Record {
	return &Record{TS: lockfile.NewTime(time.Now()), Event: "acquire", Name: name, Owner: "tester", Host: "h", PID: os.Getpid(), Token: uint64(n)}
}

// needRotation skips a test on platforms where audit.log is not rotated.
func needRotation(t *testing.T) {
	t.Helper()
	if !RotationSupported {
		t.Skip("audit.log is not rotated on this platform")
	}
}

func appendN(t *testing.T, l *Log, name string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := l.Append(testRec(name, i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

// tokens reads the whole log and returns name:token of every record.
func tokens(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	st, err := Scan(dir, func(_ []byte, rec *Record) error {
		out = append(out, fmt.Sprintf("%s:%d", rec.Name, rec.Token))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Bad != 0 || st.Records != len(out) {
		t.Fatalf("scan stats %+v for %d records", st, len(out))
	}
	return out
}

func fileTokens(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	var toks []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		_, rec, _, err := Parse([]byte(l))
		if err != nil {
			t.Fatalf("%s: bad line %q", path, l)
		}
		toks = append(toks, fmt.Sprint(rec.Token))
	}
	return strings.Join(toks, ",")
}

func TestAppendWritesOneLinePerRecord(t *testing.T) {
	dir := t.TempDir()
	l := New(dir, DefaultConfig())
	defer l.Close()
	appendN(t, l, "a", 0, 3)
	data, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != 3 {
		t.Fatalf("%d lines, want 3:\n%s", n, data)
	}
	if got := strings.Join(tokens(t, dir), " "); got != "a:0 a:1 a:2" {
		t.Fatalf("records %s", got)
	}
	// Close, then use again: the log reopens.
	_ = l.Close()
	appendN(t, l, "a", 3, 4)
	if got := len(tokens(t, dir)); got != 4 {
		t.Fatalf("%d records after reopening, want 4", got)
	}
}

func TestRotationKeepsNewestGenerations(t *testing.T) {
	needRotation(t)
	dir := t.TempDir()
	// MaxBytes 1: every append rotates right after writing.
	l := New(dir, Config{MaxBytes: 1, Keep: 3})
	defer l.Close()
	appendN(t, l, "r", 0, 5)
	for n, want := range map[int]string{1: "4", 2: "3", 3: "2"} {
		if got := fileTokens(t, genPath(l.Path(), n)); got != want {
			t.Errorf("audit.log.%d holds %s, want %s", n, got, want)
		}
	}
	for _, gone := range []string{l.Path(), genPath(l.Path(), 4)} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Errorf("%s exists after rotation", gone)
		}
	}
	if got := strings.Join(tokens(t, dir), " "); got != "r:2 r:3 r:4" {
		t.Fatalf("scan order %s, want oldest first", got)
	}
}

func TestRotationTrimsGenerationsBeyondKeep(t *testing.T) {
	needRotation(t)
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	for n := 1; n <= 5; n++ {
		if err := os.WriteFile(genPath(path, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l := New(dir, Config{MaxBytes: 1, Keep: 0}) // Keep below 1 means 1
	defer l.Close()
	appendN(t, l, "t", 0, 1)
	files, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0] != genPath(path, 1) || fileTokens(t, files[0]) != "0" {
		t.Fatalf("files after rotation with keep 1: %v", files)
	}
}

func TestWriterFollowsRotationByAnotherProcess(t *testing.T) {
	needRotation(t)
	dir := t.TempDir()
	a := New(dir, Config{}) // never rotates itself
	b := New(dir, Config{MaxBytes: 1, Keep: 5})
	defer a.Close()
	defer b.Close()
	appendN(t, a, "x", 1, 2)
	appendN(t, b, "x", 2, 3) // rotates audit.log (1, 2) to audit.log.1
	appendN(t, a, "x", 3, 4) // a's descriptor is audit.log.1 now: it must reopen
	if got := fileTokens(t, genPath(a.Path(), 1)); got != "1,2" {
		t.Errorf("audit.log.1 holds %s, want 1,2", got)
	}
	if got := fileTokens(t, a.Path()); got != "3" {
		t.Errorf("audit.log holds %s, want 3: a wrote into the rotated file", got)
	}
}

func TestWriterReopensRemovedLog(t *testing.T) {
	dir := t.TempDir()
	l := New(dir, DefaultConfig())
	defer l.Close()
	appendN(t, l, "x", 1, 2)
	if err := os.Remove(l.Path()); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "x", 2, 3)
	if got := fileTokens(t, l.Path()); got != "2" {
		t.Fatalf("audit.log holds %s after removal, want 2", got)
	}
}

func TestAppendFailsWithoutRoot(t *testing.T) {
	l := New(filepath.Join(t.TempDir(), "missing"), DefaultConfig())
	if err := l.Append(testRec("x", 1)); err == nil {
		t.Fatal("append into a missing directory: want an error")
	}
}

func TestConcurrentAppendsInOneProcess(t *testing.T) {
	dir := t.TempDir()
	shared := New(dir, Config{MaxBytes: 2048, Keep: 10000})
	defer shared.Close()
	var wg sync.WaitGroup
	const goroutines, each = 8, 100
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := shared
			if g%2 == 1 { // half share one Log, half have their own descriptor
				l = New(dir, Config{MaxBytes: 2048, Keep: 10000})
				defer l.Close()
			}
			for i := range each {
				if err := l.Append(testRec(fmt.Sprintf("g%d", g), i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	checkComplete(t, tokens(t, dir), goroutines, each, "g")
}

// checkComplete verifies that every writer's records are all there, once
// each, and in the order each writer wrote them.
func checkComplete(t *testing.T, toks []string, writers, each int, prefix string) {
	t.Helper()
	if len(toks) != writers*each {
		t.Fatalf("%d records, want %d", len(toks), writers*each)
	}
	next := map[string]int{}
	for _, tok := range toks {
		var w string
		var n int
		i := strings.LastIndexByte(tok, ':')
		w = tok[:i]
		if _, err := fmt.Sscan(tok[i+1:], &n); err != nil || !strings.HasPrefix(w, prefix) {
			t.Fatalf("unexpected record %q", tok)
		}
		if n != next[w] {
			t.Fatalf("writer %s: record %d follows %d (lost, duplicated or reordered)", w, n, next[w]-1)
		}
		next[w]++
	}
	if len(next) != writers {
		t.Fatalf("%d writers seen, want %d", len(next), writers)
	}
}

func TestObserverRecordsEvents(t *testing.T) {
	dir := t.TempDir()
	var warn bytes.Buffer
	obs := Observer(dir, env(nil), &warn)
	obs(lokt.Event{Type: lokt.EventAcquire, Name: "a", Actor: actor, Lock: lock})
	obs(lokt.Event{Type: lokt.EventRelease, Name: "a", Actor: actor, Lock: lock})
	var events []string
	if _, err := Scan(dir, func(_ []byte, r *Record) error { events = append(events, r.Event+":"+r.LockID); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(events, " ") != "acquire:L1 release:L1" || warn.Len() != 0 {
		t.Fatalf("events %v, warnings %q", events, warn.String())
	}
}

func TestObserverWarnsOnceAndNeverPanics(t *testing.T) {
	var warn bytes.Buffer
	obs := Observer(filepath.Join(t.TempDir(), "missing"), env(map[string]string{EnvKeep: "x"}), &warn)
	for range 3 {
		obs(lokt.Event{Type: lokt.EventAcquire, Name: "a", Actor: actor, Lock: lock})
	}
	out := warn.String()
	if strings.Count(out, "audit log not written") != 1 {
		t.Errorf("want exactly one write warning, got:\n%s", out)
	}
	if strings.Count(out, EnvKeep) != 1 {
		t.Errorf("want one warning about the bad setting, got:\n%s", out)
	}
	if !strings.Contains(out, "lock operation itself is not affected") {
		t.Errorf("warning does not say the operation is unaffected:\n%s", out)
	}
}
