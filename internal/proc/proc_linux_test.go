package proc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// statLine builds a stat line with the given comm, state and starttime.
func statLine(comm, state, start string) string {
	// Fields 4..21 are padding here; the parser must not care about them.
	mid := strings.Repeat("1 ", 18)
	return "4242 (" + comm + ") " + state + " " + mid + start + " 99 100 101\n"
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name      string
		line      string
		wantState byte
		wantStart uint64
		wantErr   bool
	}{
		{name: "plain", line: statLine("bash", "S", "12345"), wantState: 'S', wantStart: 12345},
		{name: "comm with paren and spaces", line: statLine("a) (b c) ) x", "R", "777"), wantState: 'R', wantStart: 777},
		{name: "comm ending in paren", line: statLine("x)", "Z", "1"), wantState: 'Z', wantStart: 1},
		{name: "empty comm", line: statLine("", "D", "0"), wantState: 'D', wantStart: 0},
		{name: "max starttime", line: statLine("m", "S", "18446744073709551615"), wantState: 'S', wantStart: 1<<64 - 1},
		{name: "no paren", line: "4242 bash S 1 2 3", wantErr: true},
		{name: "empty", line: "", wantErr: true},
		{name: "truncated", line: "4242 (bash) S 1 2 3\n", wantErr: true},
		{name: "bad starttime", line: statLine("bash", "S", "12x"), wantErr: true},
		{name: "negative starttime", line: statLine("bash", "S", "-5"), wantErr: true},
		{name: "long state", line: statLine("bash", "SS", "5"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, start, err := parseStat([]byte(tt.line))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseStat(%q) = %c, %d, nil; want error", tt.line, state, start)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseStat(%q): %v", tt.line, err)
			}
			if state != tt.wantState || start != tt.wantStart {
				t.Errorf("parseStat(%q) = %c, %d; want %c, %d", tt.line, state, start, tt.wantState, tt.wantStart)
			}
		})
	}
}

func TestParseStatSelf(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skipf("no procfs: %v", err)
	}
	if _, _, err := parseStat(b); err != nil {
		t.Fatalf("parseStat(/proc/self/stat): %v", err)
	}
}

func TestTokenFormat(t *testing.T) {
	tok, err := StartToken(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	boot, start, ok := strings.Cut(tok, ":")
	if !ok || boot != bootID() || boot == noBootID {
		t.Errorf("token %q: want <boot_id>:<starttime> with boot id %q", tok, bootID())
	}
	if _, err := strconv.ParseUint(start, 10, 64); err != nil {
		t.Errorf("token %q: starttime not numeric: %v", tok, err)
	}
}

func TestReadBootID(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := readBootID(write("ok", " 0b1c-2d \n")); got != "0b1c-2d" {
		t.Errorf("readBootID = %q, want trimmed id", got)
	}
	if got := readBootID(write("blank", "\n")); got != noBootID {
		t.Errorf("readBootID(blank) = %q, want %q", got, noBootID)
	}
	if got := readBootID(filepath.Join(dir, "missing")); got != noBootID {
		t.Errorf("readBootID(missing) = %q, want %q", got, noBootID)
	}
}

// TestReadStartFakeProc drives readStart against a fake procfs so every
// outcome is reached, including ones a root test run cannot provoke.
func TestReadStartFakeProc(t *testing.T) {
	root := t.TempDir()
	mk := func(pid int, content string) {
		d := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk(10, statLine("ok", "S", "500"))
	mk(11, statLine("zombie", "Z", "500"))
	mk(12, statLine("dead", "X", "500"))
	mk(13, "garbage")
	// A directory where the stat file should be: an unexpected read error.
	if err := os.MkdirAll(filepath.Join(root, "14", "stat"), 0o700); err != nil {
		t.Fatal(err)
	}

	gone := func(int) error { return unix.ESRCH }
	hidden := func(int) error { return unix.EPERM }
	visible := func(int) error { return nil }

	tests := []struct {
		name      string
		pid       int
		probe     func(int) error
		want      string
		wantNoPrc bool
		wantErr   bool
	}{
		{name: "running", pid: 10, probe: gone, want: "500"},
		{name: "zombie", pid: 11, probe: visible, wantNoPrc: true},
		{name: "dead state", pid: 12, probe: visible, wantNoPrc: true},
		{name: "garbage", pid: 13, probe: visible, wantErr: true},
		{name: "read error", pid: 14, probe: visible, wantErr: true},
		{name: "missing and gone", pid: 20, probe: gone, wantNoPrc: true},
		{name: "hidden by hidepid", pid: 20, probe: hidden, wantErr: true},
		{name: "missing but signalable", pid: 20, probe: visible, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readStart(root, tt.pid, tt.probe)
			switch {
			case tt.wantNoPrc:
				if !errors.Is(err, ErrNoProcess) {
					t.Errorf("readStart = %q, %v; want ErrNoProcess", got, err)
				}
			case tt.wantErr:
				if err == nil || errors.Is(err, ErrNoProcess) {
					t.Errorf("readStart = %q, %v; want a non-ErrNoProcess error", got, err)
				}
			default:
				if err != nil || got != tt.want {
					t.Errorf("readStart = %q, %v; want %q", got, err, tt.want)
				}
			}
		})
	}
}

func TestClassifyReadErr(t *testing.T) {
	called := false
	probe := func(int) error { called = true; return unix.ESRCH }
	err := classifyReadErr("/proc/1/stat", 1, &fs.PathError{Op: "open", Path: "/proc/1/stat", Err: fs.ErrPermission}, probe)
	if err == nil || errors.Is(err, ErrNoProcess) || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("permission error classified as %v", err)
	}
	if called {
		t.Error("permission error should not fall back to kill(2)")
	}
	if err := classifyReadErr("/proc/1/stat", 1, unix.ESRCH, probe); !errors.Is(err, ErrNoProcess) {
		t.Errorf("ESRCH during read classified as %v, want ErrNoProcess", err)
	}
}
