package mcpserver

import (
	"context"
	"errors"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/lockfile"
)

const instructions = `lokt coordinates agents and scripts that share this repository or machine.
Take a lock before work that must not run twice at once (migrations, deploys,
editing a shared generated file), and unlock it when done. Locks taken here
belong to this session: they are released when the session ends, even if it
crashes. A held lock is an error result naming who holds it, since when and
until when; call lock again with wait true to wait your turn, or why to see more.`

const lockDescription = `Take the lock NAME for this session (or refresh it if this session already
holds it). It is held until unlock, until the optional ttl passes, or until
this session ends. If someone else holds it, the result is an error naming
the holder; with wait (or a timeout) the call waits its turn instead,
reporting progress, and can be cancelled.`

const unlockDescription = `Release the lock NAME. Only its owner may release it; force releases it
whoever holds it (break-glass, recorded in the audit log: only for a lock
you are sure is abandoned).`

const statusDescription = `List locks (or just NAME) with holder, agent, age, expiry and state, and
the active freezes: the document "lokt status --json" prints.`

const whyDescription = `Explain whether NAME can be acquired now and, if not, who or what is in the
way and what to do about it: what "lokt why NAME" says.`

// LockArgs are the lock tool's arguments.
type LockArgs struct {
	Name    string `json:"name" jsonschema:"the lock's name: letters, digits, '.', '_' and '-', 1 to 128 characters, not starting with '.'"`
	TTL     string `json:"ttl,omitempty" jsonschema:"optional time to live in Go duration syntax (90s, 5m, 1h30m); default: held until unlock or the end of this session"`
	Wait    bool   `json:"wait,omitempty" jsonschema:"wait until the lock is free instead of failing at once"`
	Timeout string `json:"timeout,omitempty" jsonschema:"with wait: give up after this long (Go duration syntax; default 10m; 0 waits without limit); setting it implies wait"`
	Reason  string `json:"reason,omitempty" jsonschema:"optional note on why you hold it, shown to others in status"`
}

// UnlockArgs are the unlock tool's arguments.
type UnlockArgs struct {
	Name  string `json:"name" jsonschema:"the lock's name"`
	Force bool   `json:"force,omitempty" jsonschema:"release it even if someone else holds it (break-glass, audited)"`
}

// StatusArgs are the status tool's arguments.
type StatusArgs struct {
	Name string `json:"name,omitempty" jsonschema:"optional: only this lock (and its freeze)"`
}

// WhyArgs are the why tool's arguments.
type WhyArgs struct {
	Name string `json:"name" jsonschema:"the lock's name"`
}

func (s *Server) lock(ctx context.Context, req *mcp.CallToolRequest, in LockArgs) (*mcp.CallToolResult, any, error) {
	if err := lockfile.ValidateName(in.Name); err != nil {
		return s.failure(err)
	}
	var ttl time.Duration
	var err error
	if in.TTL != "" {
		if ttl, err = s.cfg.CLI.ParseDuration("ttl", in.TTL, false); err != nil {
			return s.failure(err)
		}
	}
	// As with flock -w and the CLI, a timeout implies waiting.
	wait, timeout := in.Wait || in.Timeout != "", defaultTimeout
	if in.Timeout != "" {
		if timeout, err = s.cfg.CLI.ParseDuration("timeout", in.Timeout, true); err != nil {
			return s.failure(err)
		}
	}
	root, err := s.cfg.Root()
	if err != nil {
		return s.failure(err)
	}
	id := s.identity(req)
	ao := lokt.AcquireOptions{Identity: id, Holder: s.cfg.Holder, TTL: ttl, Wait: wait}
	if in.Reason != "" {
		ao.Meta = map[string]string{"reason": in.Reason}
	}
	if wait {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		ao.OnBlocked = s.progress(ctx, req, in.Name)
	}
	l, err := root.Acquire(ctx, in.Name, ao)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			// The client gave up on the call; Acquire has left the line.
			s.logf("wait for %q cancelled by the client; nothing was acquired", in.Name)
			return textResult("wait for \""+in.Name+"\" cancelled; nothing was acquired", true), nil, nil
		}
		return s.failure(err)
	}
	s.mu.Lock()
	s.held[l.Name] = heldLock{lockID: l.LockID, by: id}
	s.mu.Unlock()
	text, doc := s.cfg.CLI.Acquired(l)
	return textResult(text, false), doc, nil
}

// progress returns the OnBlocked hook of a wait: a progress notification
// at once, then every progressStep, if the client asked for progress.
func (s *Server) progress(ctx context.Context, req *mcp.CallToolRequest, name string) func(error) {
	token := req.Params.GetProgressToken()
	if token == nil || req.Session == nil {
		return nil
	}
	start := time.Now()
	var last time.Time
	return func(blocker error) {
		now := time.Now()
		if !last.IsZero() && now.Sub(last) < progressStep {
			return
		}
		last = now
		waited := now.Sub(start)
		err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
			ProgressToken: token,
			// Seconds waited: it only grows, as progress must; the total
			// is unknown.
			Progress: waited.Seconds(),
			Message:  s.cfg.CLI.Blocked(name, waited, blocker),
		})
		if err != nil && ctx.Err() == nil {
			s.logf("progress notification for %q: %v", name, err)
		}
	}
}

func (s *Server) unlock(ctx context.Context, req *mcp.CallToolRequest, in UnlockArgs) (*mcp.CallToolResult, any, error) {
	if err := lockfile.ValidateName(in.Name); err != nil {
		return s.failure(err)
	}
	root, err := s.cfg.Root()
	if err != nil {
		return s.failure(err)
	}
	ro := lokt.ReleaseOptions{Identity: s.identity(req), Holder: s.cfg.Holder, IsCaller: s.cfg.CLI.IsCaller(root)}
	if in.Force {
		ro.Mode = lokt.Force
	}
	l, err := root.Release(ctx, in.Name, ro)
	if err != nil {
		return s.failure(err)
	}
	s.mu.Lock()
	if h, ok := s.held[in.Name]; ok && h.lockID == l.LockID {
		delete(s.held, in.Name)
	}
	s.mu.Unlock()
	text, doc := s.cfg.CLI.Released(l, in.Force)
	return textResult(text, false), doc, nil
}

func (s *Server) status(ctx context.Context, _ *mcp.CallToolRequest, in StatusArgs) (*mcp.CallToolResult, any, error) {
	if in.Name != "" {
		if err := lockfile.ValidateName(in.Name); err != nil {
			return s.failure(err)
		}
	}
	doc, err := s.cfg.CLI.Status(ctx, in.Name)
	if err != nil {
		return s.failure(err)
	}
	// No Content: the SDK sends the document itself as the text too.
	return nil, doc, nil
}

func (s *Server) why(ctx context.Context, _ *mcp.CallToolRequest, in WhyArgs) (*mcp.CallToolResult, any, error) {
	if err := lockfile.ValidateName(in.Name); err != nil {
		return s.failure(err)
	}
	text, doc, err := s.cfg.CLI.Why(ctx, in.Name)
	if err != nil {
		return s.failure(err)
	}
	return textResult(text, false), doc, nil
}
