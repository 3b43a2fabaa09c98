//go:build !lokt_slim

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/mcpserver"
	"github.com/lokt-dev/lokt/internal/version"
)

func runMCP(ctx context.Context, f *Factory, _ *MCPOptions) error {
	// A signal is a clean end too: release what we hold, then exit 0.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// The server holds its own locks, whatever $LOKT_HOLDER_PID says (it is
	// for harnesses whose shells come and go; this process stays), and why's
	// "already holds it" then means this server.
	f.CallerPID = os.Getpid
	getenv := f.Getenv
	f.Getenv = func(k string) string {
		if k == EnvHolderPID {
			return ""
		}
		return getenv(k)
	}
	c := &mcpCLI{f: f}
	srv := mcpserver.New(mcpserver.Config{
		Root:     c.root,
		Identity: f.Identity(),
		Holder:   lokt.Self(),
		Version:  version.Get().Version,
		CLI:      c,
		Log:      f.IO.ErrOut,
	})
	t := &mcp.IOTransport{Reader: io.NopCloser(f.IO.In), Writer: nopWriteCloser{f.IO.Out}}
	return srv.Serve(ctx, t)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// mcpCLI gives the MCP server the commands' own words. Tool calls run
// concurrently, so the Factory (which caches the root) is used under mu, and
// the renderings write into buffers of their own, never to stdout.
type mcpCLI struct {
	mu sync.Mutex
	f  *Factory
}

func (c *mcpCLI) root() (*lokt.Root, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.Root(true)
}

// capture is a copy of the Factory (sharing its root, once open) whose
// stdout is out.
func (c *mcpCLI) capture(out io.Writer) *Factory {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub := *c.f
	sub.IO = &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: c.f.IO.ErrOut}
	return &sub
}

func (c *mcpCLI) Failed(err error) (string, int) { return errorText(err), exitCode(err) }

func (c *mcpCLI) ParseDuration(arg, value string, allowZero bool) (time.Duration, error) {
	return parseDuration(arg, value, allowZero)
}

func (c *mcpCLI) Acquired(l *lokt.Lock) (string, any) {
	verb := "acquired"
	if l.RenewedAt != nil {
		verb = "refreshed"
	}
	exp := fmt.Sprintf("no expiry; held while this session's lokt mcp (pid %d) runs", l.PID)
	if l.ExpiresAt != nil {
		exp = "expires " + l.ExpiresAt.Local().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s %q (lock_id %s, token %d, %s)", verb, l.Name, l.LockID, l.Token, exp), c.LockDoc(l)
}

func (c *mcpCLI) Released(l *lokt.Lock, force bool) (string, any) {
	var text, doc bytes.Buffer
	opts := &UnlockOptions{Name: l.Name, Force: force}
	done := []released{{lock: l, forced: force}}
	_ = reportReleased(c.capture(&text), opts, done, nil)
	opts.JSON = true
	_ = reportReleased(c.capture(&doc), opts, done, nil)
	return strings.TrimSpace(text.String()), json.RawMessage(doc.Bytes())
}

// IsCaller is unlock's rule for which running holders count as the caller
// (besides the server itself): this process's ancestors.
func (c *mcpCLI) IsCaller(root *lokt.Root) func(lokt.Holder) bool { return callerAncestry(root) }

func (c *mcpCLI) Blocked(name string, waited time.Duration, blocker error) string {
	return fmt.Sprintf("waiting %s for %q: %s", shortDur(waited), name, blockerText(blocker, time.Now()))
}

func (c *mcpCLI) LockDoc(l *lokt.Lock) any {
	return toLockJSON(&lokt.Status{Name: l.Name, Lock: l, State: lokt.StateLive})
}

func (c *mcpCLI) Status(ctx context.Context, name string) (any, error) {
	var out bytes.Buffer
	if err := runStatus(ctx, c.capture(&out), &StatusOptions{Name: name, JSON: true}); err != nil {
		return nil, err
	}
	return json.RawMessage(out.Bytes()), nil
}

func (c *mcpCLI) Why(_ context.Context, name string) (string, any, error) {
	var out bytes.Buffer
	err := runWhy(c.capture(&out), &WhyOptions{Name: name, JSON: true})
	if err != nil && exitCode(err) != ExitHeld { // not acquirable is an answer, not a failure
		return "", nil, err
	}
	var v whyJSON
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		return "", nil, err
	}
	// The lines `lokt why NAME` prints.
	verdict := "can be acquired now"
	if !v.Acquirable {
		verdict = "cannot be acquired now"
	}
	text := fmt.Sprintf("%s %s:", name, verdict)
	for _, r := range v.Reasons {
		text += "\n  - " + r
	}
	return text, json.RawMessage(out.Bytes()), nil
}
