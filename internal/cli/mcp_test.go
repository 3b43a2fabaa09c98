package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/lokt-dev/lokt"
)

// TestMCPSpeaksTheCLIsWords runs `lokt mcp` in process over pipes and checks
// that its tools answer with the commands' messages and documents. Holding
// and release across processes are tested against the binary in e2e.
func TestMCPSpeaksTheCLIsWords(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	// $LOKT_HOLDER_PID is for shells; the server holds as itself.
	f, _, errOut := auditTestFactory(t, root, "LOKT_AGENT_ID", "unit-agent", EnvHolderPID, "1")
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	f.IO.In, f.IO.Out = inR, outW
	code := make(chan int, 1)
	go func() {
		code <- Run(f, []string{"mcp"})
		_ = outW.Close()
	}()
	client := mcp.NewClient(&mcp.Implementation{Name: "unit", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	call := func(tool string, args map[string]any) (*mcp.CallToolResult, string) {
		t.Helper()
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		var b strings.Builder
		for _, c := range res.Content {
			b.WriteString(c.(*mcp.TextContent).Text)
		}
		return res, b.String()
	}
	doc := func(res *mcp.CallToolResult, v any) {
		t.Helper()
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}

	res, text := call("lock", map[string]any{"name": "x", "ttl": "5m"})
	var l lockJSON
	doc(res, &l)
	if res.IsError || !strings.HasPrefix(text, `acquired "x" (lock_id `) || !strings.Contains(text, "expires ") || l.AgentID != "unit-agent" || l.TTLSec != 300 || l.State != lokt.StateLive {
		t.Fatalf("lock: %s %+v", text, l)
	}

	res, text = call("why", map[string]any{"name": "x"})
	if res.IsError || !strings.HasPrefix(text, "x can be acquired now:\n  - ") {
		t.Errorf("why of our own lock: %s", text)
	}

	res, _ = call("status", map[string]any{"name": "x"})
	var st statusJSON
	doc(res, &st)
	if res.IsError || len(st.Locks) != 1 || st.Locks[0].LockID != l.LockID || st.Dir != root {
		t.Errorf("status: %+v", st)
	}

	// Held by another process: the CLI's message, advice included.
	other, err := lokt.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Acquire(context.Background(), "y", lokt.AcquireOptions{Identity: lokt.Identity{Owner: "ops"}, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	res, text = call("lock", map[string]any{"name": "y"})
	if !res.IsError || !strings.Contains(text, `lock "y" is held by ops@`) || !strings.Contains(text, "to wait for it: add --wait; to see more: lokt why y") {
		t.Errorf("lock of a held name: %s", text)
	}
	res, text = call("why", map[string]any{"name": "y"})
	if res.IsError || !strings.HasPrefix(text, "y cannot be acquired now:\n  - held by ops@") {
		t.Errorf("why of a held name: %s", text)
	}
	res, text = call("status", map[string]any{"name": "nothing"})
	if !res.IsError || !strings.Contains(text, `lock "nothing": not found`) {
		t.Errorf("status of a missing name: %s", text)
	}

	res, text = call("unlock", map[string]any{"name": "x"})
	if res.IsError || !strings.HasPrefix(text, `released "x" (held by tester@`) || !strings.Contains(text, "unit-agent) pid ") {
		t.Errorf("unlock: %s", text)
	}
	res, text = call("unlock", map[string]any{"name": "y", "force": true})
	if res.IsError || !strings.HasPrefix(text, `force-broke "y"`) {
		t.Errorf("unlock --force: %s", text)
	}

	// The client goes: the command ends cleanly.
	_ = cs.Close()
	if c := <-code; c != ExitOK {
		t.Fatalf("lokt mcp exited %d: %s", c, errOut.String())
	}
	r, err := lokt.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(context.Background(), "x"); !errors.Is(err, lokt.ErrNotFound) {
		t.Errorf("x after the session: %v", err)
	}
}
