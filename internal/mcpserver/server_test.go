package mcpserver

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/lokt-dev/lokt"
)

// plainCLI renders with the engine's own messages; the real renderings are
// the CLI's, tested against the built binary in e2e.
type plainCLI struct{}

func (plainCLI) Failed(err error) (string, int) { return err.Error(), 1 }
func (plainCLI) ParseDuration(_, v string, _ bool) (time.Duration, error) {
	return time.ParseDuration(v)
}
func (plainCLI) Acquired(l *lokt.Lock) (string, any)         { return "acquired " + l.Name, l }
func (plainCLI) Released(l *lokt.Lock, _ bool) (string, any) { return "released " + l.Name, l }
func (plainCLI) Blocked(name string, _ time.Duration, err error) string {
	return "waiting for " + name + ": " + err.Error()
}
func (plainCLI) LockDoc(l *lokt.Lock) any                   { return l }
func (plainCLI) IsCaller(*lokt.Root) func(lokt.Holder) bool { return nil }
func (plainCLI) Status(context.Context, string) (any, error) {
	return map[string]any{"locks": []any{}}, nil
}
func (plainCLI) Why(_ context.Context, name string) (string, any, error) {
	return name + " can be acquired now", map[string]any{"name": name}, nil
}

// syncBuffer is the server's stderr, read by the test while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type harness struct {
	root     *lokt.Root
	client   *mcp.ClientSession
	served   chan error
	log      *syncBuffer
	progress chan *mcp.ProgressNotificationParams
}

// serve runs a Server for an in-memory client. Its holder is this test
// process, so only the server's own release can free its locks here.
func serve(t *testing.T, id lokt.Identity) *harness {
	t.Helper()
	root, err := lokt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{root: root, served: make(chan error, 1), log: &syncBuffer{}, progress: make(chan *mcp.ProgressNotificationParams, 10)}
	srv := New(Config{
		Root:     func() (*lokt.Root, error) { return root, nil },
		Identity: id,
		Holder:   lokt.Self(),
		Version:  "test",
		CLI:      plainCLI{},
		Log:      h.log,
	})
	st, ct := mcp.NewInMemoryTransports()
	go func() { h.served <- srv.Serve(context.Background(), st) }()
	client := mcp.NewClient(&mcp.Implementation{Name: "unit", Version: "2.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			select {
			case h.progress <- r.Params:
			default:
			}
		},
	})
	h.client, err = client.Connect(context.Background(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.client.Close() })
	return h
}

func (h *harness) call(t *testing.T, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := h.client.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return res
}

// stop closes the client and waits for Serve to return.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	_ = h.client.Close()
	if err := <-h.served; err != nil {
		t.Fatalf("Serve: %v\nlog: %s", err, h.log.String())
	}
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestLocksAreReleasedWhenTheClientGoes(t *testing.T) {
	h := serve(t, lokt.Identity{Owner: "me"})
	for _, name := range []string{"a", "b", "c"} {
		if res := h.call(t, "lock", map[string]any{"name": name}); res.IsError {
			t.Fatal(resultText(res))
		}
	}
	if res := h.call(t, "unlock", map[string]any{"name": "b"}); res.IsError {
		t.Fatal(resultText(res))
	}
	st, err := h.root.Get(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if st.Lock.AgentID != "unit/2.0" || st.Lock.PID != lokt.Self().PID {
		t.Errorf("lock a: agent %q pid %d, want the client's name/version and this process", st.Lock.AgentID, st.Lock.PID)
	}
	h.stop(t)
	for _, name := range []string{"a", "b", "c"} {
		if _, err := h.root.Get(context.Background(), name); !errors.Is(err, lokt.ErrNotFound) {
			t.Errorf("lock %s after the client closed: %v, want not found", name, err)
		}
	}
	if h.log.String() != "" {
		t.Errorf("diagnostics on a clean end: %s", h.log.String())
	}
}

// A lock that changed hands after its TTL ran out is not ours to release.
func TestReleaseAtExitSparesAnotherAcquisition(t *testing.T) {
	h := serve(t, lokt.Identity{Owner: "me", AgentID: "from-env"})
	if res := h.call(t, "lock", map[string]any{"name": "x"}); res.IsError {
		t.Fatal(resultText(res))
	}
	st, err := h.root.Get(context.Background(), "x")
	if err != nil || st.Lock.AgentID != "from-env" {
		t.Fatalf("lock x: %+v %v, want agent from-env ($LOKT_AGENT_ID wins over the client)", st, err)
	}
	// Someone breaks it and takes it anew.
	ctx := context.Background()
	if _, err := h.root.Release(ctx, "x", lokt.ReleaseOptions{Identity: lokt.Identity{Owner: "ops"}, Mode: lokt.Force}); err != nil {
		t.Fatal(err)
	}
	other, err := h.root.Acquire(ctx, "x", lokt.AcquireOptions{Identity: lokt.Identity{Owner: "ops"}, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	st, err = h.root.Get(context.Background(), "x")
	if err != nil || st.Lock.LockID != other.LockID {
		t.Fatalf("the server's exit released someone else's acquisition: %+v %v", st, err)
	}
}

func TestCancelledWaitTakesNothing(t *testing.T) {
	h := serve(t, lokt.Identity{Owner: "me"})
	ctx := context.Background()
	if _, err := h.root.Acquire(ctx, "x", lokt.AcquireOptions{Identity: lokt.Identity{Owner: "ops"}, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	callCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		p := &mcp.CallToolParams{Name: "lock", Arguments: map[string]any{"name": "x", "wait": true}}
		p.SetProgressToken("w")
		_, err := h.client.CallTool(callCtx, p)
		done <- err
	}()
	p := <-h.progress
	if !strings.Contains(p.Message, `waiting for x: lock "x" is held by ops@`) {
		t.Errorf("progress: %q", p.Message)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled call succeeded")
	}
	// Serve returns only after calls in flight have ended.
	h.stop(t)
	if !strings.Contains(h.log.String(), `wait for "x" cancelled by the client; nothing was acquired`) {
		t.Errorf("log: %s", h.log.String())
	}
	st, err := h.root.Get(context.Background(), "x")
	if err != nil || st.Lock.Owner != "ops" {
		t.Fatalf("after the cancelled wait: %+v %v", st, err)
	}
}

func TestWaitTimesOut(t *testing.T) {
	h := serve(t, lokt.Identity{Owner: "me"})
	ctx := context.Background()
	if _, err := h.root.Acquire(ctx, "x", lokt.AcquireOptions{Identity: lokt.Identity{Owner: "ops"}, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// A timeout alone implies waiting.
	res := h.call(t, "lock", map[string]any{"name": "x", "timeout": "1ms"})
	if !res.IsError || !strings.Contains(resultText(res), "gave up after waiting") {
		t.Fatalf("lock with a timeout on a held lock: %s", resultText(res))
	}
}

func TestUnknownToolIsAToolError(t *testing.T) {
	h := serve(t, lokt.Identity{Owner: "me"})
	res := h.call(t, "lokc", nil)
	if !res.IsError || !strings.Contains(resultText(res), `unknown tool "lokc"; lokt mcp has the tools lock, unlock, status and why`) {
		t.Fatalf("unknown tool: %v %s", res.IsError, resultText(res))
	}
	if res := h.call(t, "why", map[string]any{"name": "x"}); res.IsError || resultText(res) != "x can be acquired now" {
		t.Fatalf("why after an unknown tool: %s", resultText(res))
	}
}
