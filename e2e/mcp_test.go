//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/lokt-dev/lokt/internal/testbin"
)

// mcpServer is one agent session: a real `lokt mcp` process and an MCP
// client (the official SDK, as harnesses use) talking to it over stdio.
type mcpServer struct {
	cmd      *exec.Cmd
	session  *mcp.ClientSession
	stderr   *lineFeed
	progress chan *mcp.ProgressNotificationParams
	closed   bool
}

// startMCP starts `lokt mcp` on root as client clientName/1.0, with extra
// environment (such as LOKT_AGENT_ID).
func startMCP(t testing.TB, root, clientName string, extra ...string) *mcpServer {
	t.Helper()
	cmd := exec.Command(testbin.Path(t), "mcp")
	cmd.Env = env(root, extra...)
	// stderr through a pipe of our own: the transport owns Wait, which
	// would close a StderrPipe under our reader.
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = errW
	s := &mcpServer{cmd: cmd, stderr: newLineFeed(errR), progress: make(chan *mcp.ProgressNotificationParams, 100)}
	client := mcp.NewClient(&mcp.Implementation{Name: clientName, Version: "1.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			select {
			case s.progress <- req.Params:
			default:
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.session, err = client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	_ = errW.Close() // the child has its copy
	if err != nil {
		t.Fatalf("connecting to lokt mcp: %v\nstderr: %s", err, s.stderr.all())
	}
	t.Cleanup(func() {
		if !s.closed {
			_ = cmd.Process.Kill()
			_ = s.session.Close()
		}
		<-s.stderr.eof
		_ = errR.Close()
	})
	return s
}

// call calls a tool and fails the test on a protocol error: every bad call
// must come back as a tool result.
func (s *mcpServer) call(t testing.TB, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s %v: protocol error %v\nstderr: %s", tool, args, err, s.stderr.all())
	}
	return res
}

// close ends the session the way a harness does: close the server's stdin
// and wait for it to exit.
func (s *mcpServer) close(t *testing.T) error {
	t.Helper()
	s.closed = true
	return s.session.Close()
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// structured decodes a result's structured content into v.
func structured(t *testing.T, res *mcp.CallToolResult, v any) {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
}

func mustOK(t testing.TB, res *mcp.CallToolResult) {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", text(res))
	}
}

type mcpLock struct {
	Name    string            `json:"name"`
	LockID  string            `json:"lock_id"`
	PID     int               `json:"pid"`
	AgentID string            `json:"agent_id"`
	Owner   string            `json:"owner"`
	State   string            `json:"state"`
	Meta    map[string]string `json:"meta"`
}

// TestMCPSessionLocks follows two agent sessions: A's lock excludes B and
// the CLI and shows A's agent label; killing A's server frees the lock for
// B's waiting call at once (no TTL); B's lock goes when B's client closes.
func TestMCPSessionLocks(t *testing.T) {
	root := newRoot(t)
	a := startMCP(t, root, "client-a", "LOKT_AGENT_ID=agent-a")
	b := startMCP(t, root, "client-b")

	res := a.call(t, "lock", map[string]any{"name": "build", "reason": "compiling"})
	mustOK(t, res)
	var got mcpLock
	structured(t, res, &got)
	if got.PID != a.cmd.Process.Pid || got.AgentID != "agent-a" || got.Meta["reason"] != "compiling" {
		t.Fatalf("lock not held by A's server (pid %d, agent-a, reason): %+v", a.cmd.Process.Pid, got)
	}

	// Session B is denied, with the CLI's facts about the holder.
	res = b.call(t, "lock", map[string]any{"name": "build"})
	if !res.IsError {
		t.Fatalf("B took a lock A holds: %s", text(res))
	}
	for _, want := range []string{"is held by tester@", "(agent agent-a)", "pid " + strconv.Itoa(a.cmd.Process.Pid), "since ", "no expiry"} {
		if !strings.Contains(text(res), want) {
			t.Errorf("deny message lacks %q:\n%s", want, text(res))
		}
	}
	var deny struct {
		ExitCode int     `json:"exit_code"`
		Lock     mcpLock `json:"lock"`
	}
	structured(t, res, &deny)
	if deny.ExitCode != 2 || deny.Lock.AgentID != "agent-a" || deny.Lock.PID != a.cmd.Process.Pid {
		t.Errorf("deny structured content: %+v", deny)
	}
	// The CLI says the same as the tool.
	if r := run(t, root, "lock", "build"); r.code != 2 || !strings.Contains(text(res), strings.TrimPrefix(strings.TrimSpace(r.stderr), "lokt: ")[:40]) {
		t.Errorf("CLI lock: exit %d, %q; want exit 2 and the message of the tool:\n%s", r.code, r.stderr, text(res))
	}

	// The CLI sees A's lock with its agent label.
	if r := run(t, root, "exists", "build"); r.code != 0 {
		t.Fatalf("lokt exists build: exit %d, want 0", r.code)
	}
	r := run(t, root, "status", "build", "--json")
	var st struct {
		Locks []mcpLock `json:"locks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Locks) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if l := st.Locks[0]; l.AgentID != "agent-a" || l.PID != a.cmd.Process.Pid || l.State != "live" {
		t.Errorf("status shows %+v, want A's live lock labelled agent-a", l)
	}
	if r := run(t, root, "status"); !strings.Contains(r.stdout, "agent-a)") {
		t.Errorf("status table lacks the agent label:\n%s", r.stdout)
	}

	// B waits; A's server is killed outright; B's call gets the lock.
	type outcome struct {
		res *mcp.CallToolResult
		err error
	}
	waited := make(chan outcome, 1)
	go func() {
		params := &mcp.CallToolParams{Name: "lock", Arguments: map[string]any{"name": "build", "wait": true, "timeout": "1m"}}
		params.SetProgressToken("b-wait")
		res, err := b.session.CallTool(context.Background(), params)
		waited <- outcome{res, err}
	}()
	p := awaitProgress(t, b)
	if !strings.Contains(p.Message, "held by tester@") || !strings.Contains(p.Message, "agent-a)") {
		t.Errorf("progress message does not say who holds the lock: %q", p.Message)
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var o outcome
	select {
	case o = <-waited:
	case <-time.After(30 * time.Second):
		t.Fatalf("B still waiting after A's server was killed\nB stderr: %s", b.stderr.all())
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	mustOK(t, o.res)
	structured(t, o.res, &got)
	if got.PID != b.cmd.Process.Pid || got.AgentID != "client-b/1.0" {
		t.Errorf("B's lock: %+v, want pid %d and agent client-b/1.0 (from the client's name and version)", got, b.cmd.Process.Pid)
	}
	if err := a.close(t); err == nil {
		t.Error("A's server exited cleanly after SIGKILL?")
	}

	// B's client closes: B's server releases on its way out.
	if err := b.close(t); err != nil {
		t.Fatalf("B's server: %v\nstderr: %s", err, b.stderr.all())
	}
	if r := run(t, root, "exists", "build"); r.code != 3 {
		t.Fatalf("lokt exists build after B's client closed: exit %d, want 3", r.code)
	}
	if n := auditCount(t, root, "release"); n != 1 {
		t.Errorf("%d release events, want 1 (B's, at exit)", n)
	}
	if n := auditCount(t, root, "stale-break"); n != 1 {
		t.Errorf("%d stale-break events, want 1 (B taking killed A's lock)", n)
	}
}

// TestMCPCancelledWaitLeavesNothing cancels a waiting lock call and checks
// that it leaves no lock and no place in line: the lock, once released, is
// free for anyone.
func TestMCPCancelledWaitLeavesNothing(t *testing.T) {
	root := newRoot(t)
	a := startMCP(t, root, "client-a")
	b := startMCP(t, root, "client-b")
	mustOK(t, a.call(t, "lock", map[string]any{"name": "gate"}))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		params := &mcp.CallToolParams{Name: "lock", Arguments: map[string]any{"name": "gate", "wait": true, "timeout": "0"}}
		params.SetProgressToken(7)
		_, err := b.session.CallTool(ctx, params)
		done <- err
	}()
	awaitProgress(t, b)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled call returned no error")
	}
	b.stderr.expect(t, `wait for "gate" cancelled by the client; nothing was acquired`, 30*time.Second)

	mustOK(t, a.call(t, "unlock", map[string]any{"name": "gate"}))
	if r := run(t, root, "exists", "gate"); r.code != 3 {
		t.Fatalf("lokt exists gate after the holder released and the waiter cancelled: exit %d, want 3", r.code)
	}
	// No line is left behind either: the CLI takes it without waiting.
	if r := run(t, root, "lock", "gate", "--pid", "0", "--ttl", "1m"); r.code != 0 {
		t.Fatalf("CLI lock after the cancelled wait: exit %d: %s", r.code, r.stderr)
	}
	// And session B still serves.
	res := b.call(t, "status", map[string]any{"name": "gate"})
	mustOK(t, res)
}

// TestMCPBadInput: every bad call is a tool error with the CLI's message,
// and the server keeps serving.
func TestMCPBadInput(t *testing.T) {
	root := newRoot(t)
	s := startMCP(t, root, "client")
	cliMsg := func(args ...string) string {
		r := run(t, root, args...)
		if r.code != 1 {
			t.Fatalf("lokt %v: exit %d, want 1", args, r.code)
		}
		return strings.TrimPrefix(strings.TrimSpace(r.stderr), "lokt: ")
	}
	cases := []struct {
		tool string
		args map[string]any
		want string
	}{
		{"nope", map[string]any{}, `unknown tool "nope"; lokt mcp has the tools lock, unlock, status and why`},
		{"lock", map[string]any{}, `missing properties: ["name"]`},
		{"lock", map[string]any{"name": 7}, `validating /properties/name`},
		{"lock", map[string]any{"name": "x", "wait": "yes"}, `validating /properties/wait`},
		{"lock", map[string]any{"name": "x", "colour": "red"}, `colour`},
		{"lock", map[string]any{"name": "a/b"}, cliMsg("lock", "a/b")},
		{"lock", map[string]any{"name": ".hidden"}, cliMsg("lock", ".hidden")},
		{"lock", map[string]any{"name": "x", "ttl": "5"}, cliMsg("lock", "x", "--ttl", "5")},
		{"lock", map[string]any{"name": "x", "ttl": "-1m"}, cliMsg("lock", "x", "--ttl", "-1m")},
		{"lock", map[string]any{"name": "x", "timeout": "soon"}, cliMsg("lock", "x", "--wait", "--timeout", "soon")},
		{"unlock", map[string]any{"name": "a/b"}, cliMsg("unlock", "a/b")},
		{"why", map[string]any{"name": ".."}, cliMsg("why", "..")},
		{"status", map[string]any{"name": "a b"}, cliMsg("why", "a b")},
	}
	for _, c := range cases {
		res := s.call(t, c.tool, c.args)
		if !res.IsError || !strings.Contains(text(res), c.want) {
			t.Errorf("%s %v: isError=%v %q, want an error containing %q", c.tool, c.args, res.IsError, text(res), c.want)
		}
	}
	// Not found and not the owner: the CLI's messages and exit codes.
	res := s.call(t, "unlock", map[string]any{"name": "ghost"})
	var doc struct {
		ExitCode int `json:"exit_code"`
	}
	structured(t, res, &doc)
	if !res.IsError || doc.ExitCode != 3 || !strings.Contains(text(res), `lock "ghost": not found`) {
		t.Errorf("unlock of a missing lock: %q exit_code %d", text(res), doc.ExitCode)
	}
	if r := run(t, root, "lock", "theirs", "--pid", "0", "--ttl", "1m"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// The server's owner label is the same (LOKT_OWNER=tester), so take one
	// with another owner.
	cmd := exec.Command(testbin.Path(t), "lock", "other", "--pid", "0", "--ttl", "1m")
	cmd.Env = env(root, "LOKT_OWNER=someone-else")
	if r := wait(t, cmd); r.code != 0 {
		t.Fatal(r.stderr)
	}
	res = s.call(t, "unlock", map[string]any{"name": "other"})
	structured(t, res, &doc)
	if !res.IsError || doc.ExitCode != 4 || !strings.Contains(text(res), `belongs to owner "someone-else", not "tester"`) {
		t.Errorf("unlock of another owner's lock: %q exit_code %d", text(res), doc.ExitCode)
	}
	if r := run(t, root, "exists", "other"); r.code != 0 {
		t.Fatalf("a refused unlock removed the lock (exists: %d)", r.code)
	}

	// Still serving, and nothing was created by the bad calls.
	res = s.call(t, "status", nil)
	mustOK(t, res)
	var st struct {
		Locks []mcpLock `json:"locks"`
	}
	structured(t, res, &st)
	if len(st.Locks) != 2 {
		t.Errorf("status after bad calls: %+v, want only the two CLI locks", st.Locks)
	}
	mustOK(t, s.call(t, "lock", map[string]any{"name": "x"}))
}

// TestMCPStatusAndWhyMatchTheCLI: status is `status --json`'s document and
// why is `why`'s explanation, word for word.
func TestMCPStatusAndWhyMatchTheCLI(t *testing.T) {
	root := newRoot(t)
	s := startMCP(t, root, "client", "LOKT_AGENT_ID=agent-s")
	mustOK(t, s.call(t, "lock", map[string]any{"name": "db", "ttl": "10m"}))
	if r := run(t, root, "freeze", "deploy", "--ttl", "5m", "--reason", "release"); r.code != 0 {
		t.Fatal(r.stderr)
	}

	res := s.call(t, "status", nil)
	mustOK(t, res)
	var fromTool, fromCLI map[string]any
	structured(t, res, &fromTool)
	if err := json.Unmarshal([]byte(run(t, root, "status", "--json").stdout), &fromCLI); err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, fromTool), mustJSON(t, fromCLI); a != b {
		t.Errorf("status tool and status --json differ:\n tool: %s\n  cli: %s", a, b)
	}

	res = s.call(t, "why", map[string]any{"name": "deploy"})
	mustOK(t, res)
	r := run(t, root, "why", "deploy")
	if r.code != 2 {
		t.Fatalf("lokt why deploy: exit %d", r.code)
	}
	// The first two lines (verdict, freeze) carry no ages that may tick.
	cliLines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if !strings.HasPrefix(text(res), strings.Join(cliLines[:2], "\n")) {
		t.Errorf("why tool:\n%s\nlokt why:\n%s", text(res), r.stdout)
	}
	var why struct {
		Acquirable bool `json:"acquirable"`
	}
	structured(t, res, &why)
	if why.Acquirable {
		t.Error("why says a frozen name is acquirable")
	}
	// Refreshing by the same session is not a denial.
	res = s.call(t, "lock", map[string]any{"name": "db", "ttl": "20m"})
	mustOK(t, res)
	if !strings.HasPrefix(text(res), `refreshed "db"`) {
		t.Errorf("second lock by the same session: %s", text(res))
	}
}

func awaitProgress(t *testing.T, s *mcpServer) *mcp.ProgressNotificationParams {
	t.Helper()
	select {
	case p := <-s.progress:
		return p
	case <-time.After(30 * time.Second):
		t.Fatalf("no progress notification from a waiting lock call\nstderr: %s", s.stderr.all())
		return nil
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkMCPLockRoundTrip measures a lock and an unlock tool call, each a
// full round trip from an SDK client through stdio to a real lokt mcp
// process and its lock root.
func BenchmarkMCPLockRoundTrip(b *testing.B) {
	s := startMCP(b, newRoot(b), "bench")
	lock := map[string]any{"name": "bench"}
	for b.Loop() {
		mustOK(b, s.call(b, "lock", lock))
		mustOK(b, s.call(b, "unlock", lock))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/call")
}

// TestMCPSIGTERMReleases: a server told to stop releases its locks (a
// release, not a stale lock left for the next taker to break) and exits 0.
func TestMCPSIGTERMReleases(t *testing.T) {
	root := newRoot(t)
	s := startMCP(t, root, "client")
	mustOK(t, s.call(t, "lock", map[string]any{"name": "deploy"}))
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The connection ends when the server exits, with stdin still open.
	_ = s.session.Wait()
	if err := s.close(t); err != nil {
		t.Fatalf("lokt mcp after SIGTERM: %v\nstderr: %s", err, s.stderr.all())
	}
	if r := run(t, root, "exists", "deploy"); r.code != 3 {
		t.Fatalf("lokt exists deploy after SIGTERM: exit %d, want 3", r.code)
	}
	if n := auditCount(t, root, "release"); n != 1 {
		t.Errorf("%d release events, want 1", n)
	}
}
