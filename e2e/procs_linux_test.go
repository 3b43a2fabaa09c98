package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lokt-dev/lokt/internal/proc"
	"github.com/lokt-dev/lokt/internal/testbin"
)

// Helpers for tests whose processes outlive the lokt process that started
// them: guard's command trees, and holders in other namespaces.

// waitLong bounds every wait for an event in these tests: generous, since
// a loaded two-core CI machine can stall a race-built binary for seconds.
const waitLong = 60 * time.Second

// treeProc is a process started by a test with its output in files rather
// than pipes: processes it leaves behind keep inherited pipes open, which
// would hold up waiting for it.
type treeProc struct {
	cmd    *exec.Cmd
	stdout string
	stderr string
	stdin  *os.File // write end of the process's stdin, nil unless asked
	done   chan struct{}
	code   int // exit code, -1 if killed by a signal; valid once done is closed
}

// startTree starts argv with envv in a process group of its own, so that it
// is not in a terminal's foreground even when the tests run from one (guard
// then gives its command a process group too), and so that cleanup can
// reach it. withStdin gives it a pipe as stdin, closed by closeStdin.
func startTree(t *testing.T, envv []string, withStdin bool, argv ...string) *treeProc {
	t.Helper()
	dir := t.TempDir()
	p := &treeProc{stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr"), done: make(chan struct{})}
	out, err := os.Create(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = out.Close() }()
	errf, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = errf.Close() }()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = envv
	cmd.Stdout, cmd.Stderr = out, errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdinR *os.File
	if withStdin {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdinR, p.stdin = r, w
		cmd.Stdin = r
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if stdinR != nil {
		_ = stdinR.Close()
	}
	p.cmd = cmd
	go func() {
		err := cmd.Wait()
		p.code = statusOf(err)
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		p.closeStdin()
		<-p.done
	})
	return p
}

func (p *treeProc) pid() int { return p.cmd.Process.Pid }

func (p *treeProc) closeStdin() {
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
}

// finish waits for the process and returns its exit code (-1: killed).
func (p *treeProc) finish(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(waitLong):
		t.Fatalf("%v still running after %s\nstderr: %s", p.cmd.Args, waitLong, p.errText())
		return 0
	}
}

func (p *treeProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *treeProc) errText() string {
	b, _ := os.ReadFile(p.stderr)
	return string(b)
}

// pidReports is a FIFO that a test's processes write "NAME PID" lines to
// once they run, so the test learns their pids as an event. The test keeps
// it open for reading and writing, so writers never block on it and it
// never reports end of file.
type pidReports struct {
	path  string
	lines chan string
	mu    sync.Mutex
	got   map[string]reported
}

// reported is a process a test started, with the start token that tells it
// from a later process with its pid.
type reported struct {
	pid   int
	start string
}

func newPidReports(t *testing.T) *pidReports {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &pidReports{path: path, lines: make(chan string, 64), got: map[string]reported{}}
	go func() {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	t.Cleanup(func() {
		// Whatever the test left running is killed, but only if its pid
		// still names the process it reported.
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.got {
			if proc.Check(p.pid, p.start) == proc.Alive {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
		_ = f.Close()
	})
	return r
}

// expect waits for the given names to report and returns their pids.
func (r *pidReports) expect(t *testing.T, names ...string) map[string]int {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]int{}
	deadline := time.After(waitLong)
	for len(want) > 0 {
		r.mu.Lock()
		for n := range want {
			if p, ok := r.got[n]; ok {
				out[n] = p.pid
				delete(want, n)
			}
		}
		r.mu.Unlock()
		if len(want) == 0 {
			break
		}
		select {
		case line, ok := <-r.lines:
			if !ok {
				t.Fatal("report FIFO closed")
			}
			name, pidText, _ := strings.Cut(line, " ")
			pid, err := strconv.Atoi(pidText)
			if err != nil {
				t.Fatalf("bad report line %q", line)
			}
			start, err := proc.StartToken(pid)
			if err != nil {
				t.Fatalf("%s (pid %d) reported, but its start cannot be read: %v", name, pid, err)
			}
			r.mu.Lock()
			r.got[name] = reported{pid: pid, start: start}
			r.mu.Unlock()
		case <-deadline:
			t.Fatalf("processes %v did not report within %s", missingNames(want), waitLong)
		}
	}
	return out
}

// await waits for a line that starts with prefix, from a process whose pid
// means nothing here (another PID namespace), and returns it.
func (r *pidReports) await(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(waitLong)
	for {
		select {
		case line, ok := <-r.lines:
			if !ok {
				t.Fatal("report FIFO closed")
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-deadline:
			t.Fatalf("no %q report within %s", prefix, waitLong)
		}
	}
}

func missingNames(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// kill SIGKILLs a reported process and waits until it is gone.
func (r *pidReports) kill(t *testing.T, name string) {
	t.Helper()
	r.mu.Lock()
	p, ok := r.got[name]
	r.mu.Unlock()
	if !ok {
		t.Fatalf("%s never reported", name)
	}
	if proc.Check(p.pid, p.start) != proc.Alive {
		t.Fatalf("%s (pid %d) died before the test killed it", name, p.pid)
	}
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, name, p.pid)
}

// waitGone waits until pid has exited (a zombie counts as exited: it runs
// nothing and holds no descriptor).
func waitGone(t *testing.T, what string, pid int) {
	t.Helper()
	pollFor(t, waitLong, what+" (pid "+strconv.Itoa(pid)+") to exit", func() bool { return processGone(pid) })
}

// fullLock is a lock record with the fields that say who keeps it live.
type fullLock struct {
	Name      string `json:"name"`
	LockID    string `json:"lock_id"`
	Host      string `json:"host"`
	PID       int    `json:"pid"`
	PIDStart  string `json:"pid_start"`
	PIDNS     string `json:"pid_ns"`
	ChildPID  int    `json:"child_pid"`
	PGID      int    `json:"pgid"`
	Kept      bool   `json:"kept"`
	ExpiresAt string `json:"expires_at"`
	Token     uint64 `json:"token"`
}

func readFullLock(t *testing.T, root, name string) (rec fullLock, ok bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "locks", name+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return rec, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("lock file of %s: %v\n%s", name, err, b)
	}
	return rec, true
}

// statusLock is lock name as `lokt status NAME --json` shows it, which
// includes what guard noted about its command's tree with its evidence
// rather than in the record.
func statusLock(t *testing.T, root, name string) (rec fullLock, ok bool) {
	t.Helper()
	r := run(t, root, "status", name, "--json")
	if r.code == 3 {
		return rec, false
	}
	var st struct {
		Locks []fullLock `json:"locks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 {
		t.Fatalf("status %s --json: exit %d, %v\n%s%s", name, r.code, err, r.stdout, r.stderr)
	}
	for _, l := range st.Locks {
		if l.Name == name {
			return l, true
		}
	}
	return rec, false
}

// expiry is the record's expires_at (zero if none).
func (l fullLock) expiry(t *testing.T) time.Time {
	t.Helper()
	if l.ExpiresAt == "" {
		return time.Time{}
	}
	ts, err := time.Parse(time.RFC3339Nano, l.ExpiresAt)
	if err != nil {
		t.Fatalf("expires_at %q: %v", l.ExpiresAt, err)
	}
	return ts
}

// contend runs `lokt guard NAME -- true` once and returns its result.
func contend(t *testing.T, root, name string) result {
	t.Helper()
	return run(t, root, "guard", name, "--", "true")
}

// assertHeld: contenders are refused while the tree runs, before and after
// the clean-ups that remove evidence (a refused guard's own, prune's
// sweep): they must spare the evidence the holder's tree is judged by.
func assertHeld(t *testing.T, root, name, while string) {
	t.Helper()
	for i := range 2 {
		if r := contend(t, root, name); r.code != 2 {
			t.Fatalf("%s: contender %d got exit %d, want 2 (held)\nstderr: %s", while, i+1, r.code, r.stderr)
		}
		if i == 0 {
			if r := run(t, root, "status", "--prune-expired"); r.code != 0 {
				t.Fatalf("status --prune-expired: exit %d: %s", r.code, r.stderr)
			}
		}
	}
}

// assertFreeAtOnce: the first attempt succeeds, with no TTL to wait for.
func assertFreeAtOnce(t *testing.T, root, name, after string) {
	t.Helper()
	start := time.Now()
	r := contend(t, root, name)
	if r.code != 0 {
		rec, _ := readFullLock(t, root, name)
		t.Fatalf("%s: the next guard got exit %d, want 0 at once\nstderr: %s\nrecord: %+v", after, r.code, r.stderr, rec)
	}
	t.Logf("%s: taken on the first try (%s)", after, time.Since(start).Round(time.Millisecond))
}

// holdFileHolders lists the descriptors of pid that refer to a lock's
// evidence file (locks/.NAME.ID.hold).
func holdFileHolders(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasSuffix(target, ".hold") {
			out = append(out, e.Name()+" -> "+target)
		}
	}
	return out
}

// flockWaiters returns the pids /proc/locks shows blocked on a flock of the
// file at path. Lines look like (the arrow marks a waiter, the device is
// major:minor in hex, then the inode):
//
//	1: FLOCK  ADVISORY  WRITE 7830 fe:00:9990850 0 EOF
//	1: -> FLOCK  ADVISORY  WRITE 7863 fe:00:9990850 0 EOF
func flockWaiters(t *testing.T, path string) []int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) < 7 || f[1] != "->" || f[2] != "FLOCK" || f[6] != id {
			continue
		}
		if pid, err := strconv.Atoi(f[5]); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// unshareCmd returns the command that runs argv in new namespaces of the
// given kinds (unshare(1) flags), as root or, failing that, in a user
// namespace of its own; it skips the test where neither is permitted.
func unshareCmd(t *testing.T, flags []string, argv ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare(1) (util-linux) is not installed")
	}
	for _, prefix := range [][]string{{"unshare"}, {"unshare", "--user", "--map-root-user"}} {
		probe := append(append(append([]string{}, prefix...), flags...), "true")
		if exec.Command(probe[0], probe[1:]...).Run() == nil {
			return append(append(append([]string{}, prefix...), flags...), argv...)
		}
	}
	t.Skipf("creating namespaces (unshare %s) is not permitted here, as root or in a user namespace", strings.Join(flags, " "))
	return nil
}

// loktBin is the path of the binary under test.
func loktBin(t *testing.T) string { return testbin.Path(t) }
