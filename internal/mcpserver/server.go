// Package mcpserver serves lokt's locks to one coding agent over the Model
// Context Protocol. Agent harnesses start one MCP server per session and keep
// it running for exactly as long as the session, which is the process a
// session's locks should belong to: every lock taken here is held by the
// server process itself (an ordinary process holder), so when the session
// ends and the server exits, or is killed, its locks are stale at once by the
// usual liveness rules. On a clean end the server releases them itself.
//
// The server speaks the command line's words: messages, advice and JSON
// documents come from the CLI through the CLI interface, so a tool and the
// matching command never disagree.
package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/lokt-dev/lokt"
)

// CLI lends the server the command line's renderings.
type CLI interface {
	// Failed is the message (with advice) and exit code the CLI gives err.
	Failed(err error) (text string, code int)
	// ParseDuration parses value as the CLI parses the flag named arg.
	ParseDuration(arg, value string, allowZero bool) (time.Duration, error)
	// Acquired describes a lock just taken (or refreshed), as `lock` and
	// `lock --json` do.
	Acquired(l *lokt.Lock) (text string, doc any)
	// Released describes a lock just removed, as `unlock` and `unlock --json` do.
	Released(l *lokt.Lock, force bool) (text string, doc any)
	// IsCaller is unlock's rule for which running holders, besides the
	// server itself, count as the caller.
	IsCaller(root *lokt.Root) func(lokt.Holder) bool
	// Blocked is the CLI's progress line for a wait of waited so far.
	Blocked(name string, waited time.Duration, blocker error) string
	// LockDoc is a live lock as `status --json` shows it.
	LockDoc(l *lokt.Lock) any
	// Status is the document `status --json [NAME]` prints.
	Status(ctx context.Context, name string) (doc any, err error)
	// Why is `why NAME` as text and as its --json document.
	Why(ctx context.Context, name string) (text string, doc any, err error)
}

// Config is what a Server needs from the command that runs it.
type Config struct {
	// Root opens the lock root (creating it if need be).
	Root func() (*lokt.Root, error)
	// Identity is the owner label and $LOKT_AGENT_ID. An empty AgentID is
	// filled in from the client's name and version (from initialize).
	Identity lokt.Identity
	// Holder is the process every lock is held by: the server's own.
	Holder lokt.Holder
	// Version is the server's version as announced to clients.
	Version string
	CLI     CLI
	// Log receives diagnostics. Never stdout: that carries the protocol.
	Log io.Writer
}

// defaultTimeout bounds a wait that names no timeout, as the CLI's --timeout
// default does.
const defaultTimeout = 10 * time.Minute

// progressStep spaces progress notifications after the first, which goes
// out as soon as a wait is blocked so the client knows it is waiting.
const progressStep = 5 * time.Second

// Server is one MCP session's lock holder.
type Server struct {
	cfg Config
	mcp *mcp.Server

	mu      sync.Mutex
	held    map[string]heldLock // the locks taken here, by name
	closing bool
	calls   sync.WaitGroup // tool calls in flight; Serve waits for them
}

// New returns a Server with the lock, unlock, status and why tools.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, held: map[string]heldLock{}}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "lokt", Title: "lokt locks", Version: cfg.Version}, &mcp.ServerOptions{
		Instructions: instructions,
		// The SDK's own diagnostics (session ended with an error, ...) go
		// where ours do.
		Logger: slog.New(slog.NewTextHandler(cfg.Log, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	addTool(s, &mcp.Tool{Name: "lock", Description: lockDescription}, s.lock)
	addTool(s, &mcp.Tool{Name: "unlock", Description: unlockDescription}, s.unlock)
	addTool(s, &mcp.Tool{Name: "status", Description: statusDescription}, s.status)
	addTool(s, &mcp.Tool{Name: "why", Description: whyDescription}, s.why)
	s.mcp.AddReceivingMiddleware(unknownToolIsToolError)
	return s
}

// toolNames are the tools, as an unknown tool's error lists them.
const toolNames = "lock, unlock, status and why"

// unknownToolIsToolError answers a call of a tool that does not exist with a
// tool error instead of the SDK's protocol error, so that the model sees the
// mistake and the tools it can use, as it does for every other bad call.
func unknownToolIsToolError(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if call, ok := req.(*mcp.CallToolRequest); ok && call.Params != nil {
			switch call.Params.Name {
			case "lock", "unlock", "status", "why":
			default:
				return textResult(fmt.Sprintf("unknown tool %q; lokt mcp has the tools %s", call.Params.Name, toolNames), true), nil
			}
		}
		return next(ctx, method, req)
	}
}

// addTool registers h, counting its calls so that Serve can wait for them
// before it releases what they took.
func addTool[In any](s *Server, t *mcp.Tool, h mcp.ToolHandlerFor[In, any]) {
	mcp.AddTool(s.mcp, t, func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, any, error) {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return nil, nil, errors.New("lokt mcp is shutting down")
		}
		s.calls.Add(1)
		s.mu.Unlock()
		defer s.calls.Done()
		return h(ctx, req, in)
	})
}

// Serve answers one client over t until the client closes the connection
// or ctx ends, then waits for calls in flight and releases every lock this
// server still holds.
func (s *Server) Serve(ctx context.Context, t mcp.Transport) error {
	err := s.mcp.Run(ctx, t)
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.calls.Wait()
	s.releaseAll()
	if ctx.Err() != nil || clientGone(err) {
		// We were told to stop, or the client went away: the normal ends.
		return nil
	}
	return fmt.Errorf("MCP session ended: %w", err)
}

// clientGone reports whether err only says that the client closed the
// connection, perhaps while a response was still being written.
func clientGone(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, mcp.ErrConnectionClosed) ||
		errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.EPIPE)
}

// releaseAll releases the locks taken here, each only if it is still this
// acquisition (a TTL may have run out and someone else taken it since).
func (s *Server) releaseAll() {
	s.mu.Lock()
	held := s.held
	s.held = map[string]heldLock{}
	s.mu.Unlock()
	if len(held) == 0 {
		return
	}
	root, err := s.cfg.Root()
	if err != nil {
		s.logf("cannot release %d locks at exit: %v (they are stale once this process exits)", len(held), err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, h := range held {
		_, err := root.Release(ctx, name, lokt.ReleaseOptions{Identity: h.by, Holder: s.cfg.Holder, LockID: h.lockID})
		if err != nil && !errors.Is(err, lokt.ErrNotFound) && !errors.Is(err, lokt.ErrLost) {
			s.logf("releasing %q at exit: %v", name, err)
		}
	}
}

// heldLock is one acquisition made here: its lock_id (so that the release
// at exit removes only that acquisition) and who made it (for the audit log).
type heldLock struct {
	lockID string
	by     lokt.Identity
}

// identity is the configured one, with the client's name and version as the
// agent id when $LOKT_AGENT_ID did not give one.
func (s *Server) identity(req *mcp.CallToolRequest) lokt.Identity {
	id := s.cfg.Identity
	if id.AgentID != "" || req == nil || req.Session == nil {
		return id
	}
	if p := req.Session.InitializeParams(); p != nil && p.ClientInfo != nil {
		id.AgentID = p.ClientInfo.Name
		if p.ClientInfo.Version != "" {
			id.AgentID += "/" + p.ClientInfo.Version
		}
	}
	return id
}

func (s *Server) logf(format string, args ...any) {
	fmt.Fprintf(s.cfg.Log, "lokt mcp: "+format+"\n", args...)
}

// errorDoc is the structured content of a failed call: the CLI's message
// and exit code, and what stood in the way when there is something to show.
type errorDoc struct {
	Error    string       `json:"error"`
	ExitCode int          `json:"exit_code"`
	Lock     any          `json:"lock,omitempty"`
	Freeze   *lokt.Freeze `json:"freeze,omitempty"`
}

// failure turns err into a tool error (isError, so the model sees it and
// can act on it) carrying the CLI's message and a structured copy.
func (s *Server) failure(err error) (*mcp.CallToolResult, any, error) {
	text, code := s.cfg.CLI.Failed(err)
	doc := errorDoc{Error: text, ExitCode: code}
	var held *lokt.HeldError
	var frozen *lokt.FrozenError
	if errors.As(err, &held) {
		doc.Lock = s.cfg.CLI.LockDoc(held.Lock)
	}
	if errors.As(err, &frozen) {
		doc.Freeze = frozen.Freeze
	}
	return textResult(text, true), doc, nil
}

func textResult(text string, isError bool) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: isError, Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}
