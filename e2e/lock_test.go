package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/testbin"
)

// caller is a shell that stands in for a user's script: it waits for "go" on
// stdin, runs one lokt command (so the shell is the lock's holder), prints
// lokt's exit code, and stays alive until its stdin is closed.
type caller struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	errLog string
}

const callerScript = `read go || exit 99
"$0" "$@" >/dev/null 2>"$LOKT_TEST_ERRLOG"
echo $?
read done
`

func startCaller(t *testing.T, root, dir string, args ...string) *caller {
	t.Helper()
	return newCaller(t, env(root), dir, args...)
}

// newCaller is startCaller with the environment given.
func newCaller(t *testing.T, envv []string, dir string, args ...string) *caller {
	t.Helper()
	errLog := filepath.Join(t.TempDir(), "stderr")
	cmd := exec.Command("sh", append([]string{"-c", callerScript, testbin.Path(t)}, args...)...)
	cmd.Env = append(envv, "LOKT_TEST_ERRLOG="+errLog)
	cmd.Dir = dir
	stdin, stdout := startPiped(t, cmd)
	c := &caller{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout), errLog: errLog}
	t.Cleanup(c.stop)
	return c
}

func (c *caller) fire(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// code reads the exit code of the lokt command the shell ran.
func (c *caller) code(t *testing.T) int {
	t.Helper()
	line, err := c.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("reading caller result: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("caller printed %q", line)
	}
	return n
}

func (c *caller) stderr() string {
	b, _ := os.ReadFile(c.errLog)
	return string(b)
}

// stop ends the shell (and with it, its claim on any lock) and reaps it.
func (c *caller) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.stdin.Close()
	_ = c.cmd.Wait()
}

// race starts n callers running the same lokt command, releases them at
// once, and returns their exit codes. The callers stay alive (holding what
// they won) until stopped.
func race(t *testing.T, root string, n int, args ...string) ([]*caller, []int) {
	t.Helper()
	callers := make([]*caller, n)
	for i := range callers {
		callers[i] = startCaller(t, root, "", args...)
	}
	for _, c := range callers {
		c.fire(t)
	}
	codes := make([]int, n)
	for i, c := range callers {
		codes[i] = c.code(t)
	}
	return callers, codes
}

func assertOneWinner(t *testing.T, round int, callers []*caller, codes []int) {
	t.Helper()
	winners := 0
	for i, code := range codes {
		switch code {
		case 0:
			winners++
		case 2:
		default:
			t.Fatalf("round %d: contender %d exited %d: %s", round, i, code, callers[i].stderr())
		}
	}
	if winners != 1 {
		t.Fatalf("round %d: %d contenders acquired the lock, want exactly 1 (codes %v)", round, winners, codes)
	}
}

const (
	contenders = 16
	rounds     = 50
)

// Sixteen shells of the same user and owner label run `lokt lock` at once:
// each shell is a distinct holder, so exactly one may win.
func TestContentionOneWinner(t *testing.T) {
	root := newRoot(t)
	for round := range rounds {
		name := fmt.Sprintf("race-%d", round)
		callers, codes := race(t, root, contenders, "lock", name)
		assertOneWinner(t, round, callers, codes)
		for _, c := range callers {
			c.stop()
		}
	}
}

// The lock's holder is dead (round 0: a process that exited; later rounds:
// the previous winner, whose shell has exited). Sixteen contenders break it
// at once: exactly one must win, since breaking and taking are one step.
func TestStaleBreakRaceOneWinner(t *testing.T) {
	root := newRoot(t)
	sleeper := exec.Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	if r := run(t, root, "lock", "stale", "--pid", strconv.Itoa(sleeper.Process.Pid)); r.code != 0 {
		t.Fatalf("lock --pid: %d %s", r.code, r.stderr)
	}
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	for round := range rounds {
		callers, codes := race(t, root, contenders, "lock", "stale")
		assertOneWinner(t, round, callers, codes)
		for _, c := range callers {
			c.stop()
		}
	}
}

// An expired TTL lock (written with an expiry in the past, so no clock is
// involved) is broken by exactly one of sixteen contenders.
func TestExpiredBreakRaceOneWinner(t *testing.T) {
	root := newRoot(t)
	for round := range rounds / 5 {
		name := fmt.Sprintf("expired-%d", round)
		writeExpiredLock(t, root, name)
		callers, codes := race(t, root, contenders, "lock", name)
		assertOneWinner(t, round, callers, codes)
		for _, c := range callers {
			c.stop()
		}
	}
}

func writeExpiredLock(t *testing.T, root, name string) {
	t.Helper()
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	rec := fmt.Sprintf(`{"version":1,"name":%q,"lock_id":"old","owner":"someone","host":"elsewhere","pid":1,"pid_start":"x","acquired_at":%q,"expires_at":%q,"ttl_sec":1}`, name, past, past)
	if err := os.MkdirAll(filepath.Join(root, "locks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "locks", name+".json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The same user with the same owner label in two terminals is two holders.
func TestSameOwnerTwoHoldersDenied(t *testing.T) {
	root := newRoot(t)
	first := startCaller(t, root, "", "lock", "build")
	first.fire(t)
	if code := first.code(t); code != 0 {
		t.Fatalf("first lock: %d %s", code, first.stderr())
	}
	second := startCaller(t, root, "", "lock", "build")
	second.fire(t)
	if code := second.code(t); code != 2 {
		t.Fatalf("second holder with the same owner got %d, want 2", code)
	}
	if !strings.Contains(second.stderr(), "held by tester@") {
		t.Errorf("denial does not say who holds the lock: %q", second.stderr())
	}
}

// Within one shell, lock twice refreshes (same lock_id); a later lock by
// the script after the first caller exited breaks the now-stale lock; while
// the first caller lives, the script is denied.
func TestRefreshAndCallerLifetime(t *testing.T) {
	root := newRoot(t)
	bin := testbin.Path(t)
	script := `set -e
a=$("$0" lock refresh --json)
b=$("$0" lock refresh --ttl 1h --json)
echo "$a" | sed -n 's/.*"lock_id": "\([0-9a-f]*\)".*/\1/p'
echo "$b" | sed -n 's/.*"lock_id": "\([0-9a-f]*\)".*/\1/p'
`
	cmd := exec.Command("sh", "-c", script, bin)
	cmd.Env = env(root)
	r := wait(t, cmd)
	if r.code != 0 {
		t.Fatalf("script: %d %s", r.code, r.stderr)
	}
	ids := strings.Fields(r.stdout)
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Fatalf("refresh changed the lock_id: %q", ids)
	}

	// First caller alive: a second caller (another shell) is denied.
	first := startCaller(t, root, "", "lock", "life")
	first.fire(t)
	if code := first.code(t); code != 0 {
		t.Fatalf("first: %d", code)
	}
	if r := run(t, root, "lock", "life"); r.code != 2 {
		t.Fatalf("lock while first caller lives: %d, want 2", r.code)
	}
	// First caller gone: its lock is stale and the next caller takes it.
	first.stop()
	later := startCaller(t, root, "", "lock", "life")
	later.fire(t)
	if code := later.code(t); code != 0 {
		t.Fatalf("lock after the first caller exited: %d, want 0: %s", code, later.stderr())
	}
}

// Two processes started in different directories of one repository (and
// one of its linked worktrees) contend on the same lock.
func TestRepositoryDirectoriesShareRoot(t *testing.T) {
	repo := t.TempDir()
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + repo}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git(repo, "init", "-q")
	git(repo, "commit", "-q", "--allow-empty", "-m", "init")
	git(repo, "worktree", "add", "-q", filepath.Join(repo, "wt"))
	sub := filepath.Join(repo, "a", "b")
	other := filepath.Join(repo, "c")
	for _, d := range []string{sub, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	noRootEnv := func(c *caller) { c.cmd.Env = withoutRoot(c.cmd.Env) }
	holder := startCaller(t, "", sub, "lock", "shared")
	noRootEnv(holder)
	holder.fire(t)
	if code := holder.code(t); code != 0 {
		t.Fatalf("holder in %s: %d %s", sub, code, holder.stderr())
	}
	for _, dir := range []string{other, repo, filepath.Join(repo, "wt")} {
		cmd := exec.Command(testbin.Path(t), "lock", "shared", "--json")
		cmd.Dir = dir
		cmd.Env = withoutRoot(env(""))
		if r := wait(t, cmd); r.code != 2 {
			t.Fatalf("lock from %s: %d, want 2 (same repository, same lock): %s", dir, r.code, r.stderr)
		}
	}
	cmd := exec.Command(testbin.Path(t), "status", "--json")
	cmd.Dir = filepath.Join(repo, "wt")
	cmd.Env = withoutRoot(env(""))
	r := wait(t, cmd)
	var st struct {
		Root   string `json:"root"`
		Source string `json:"root_source"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v: %s", err, r.stdout)
	}
	wantRoot, _ := filepath.EvalSymlinks(filepath.Join(repo, ".git"))
	if st.Source != "git" || st.Root != filepath.Join(wantRoot, "lokt") {
		t.Fatalf("root from worktree = %s (%s), want %s/lokt (git)", st.Root, st.Source, wantRoot)
	}
}

func withoutRoot(envv []string) []string {
	var out []string
	for _, kv := range envv {
		if !strings.HasPrefix(kv, "LOKT_ROOT=") {
			out = append(out, kv)
		}
	}
	return out
}
