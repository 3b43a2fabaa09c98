//go:build unix

package cli

import (
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// child is guard's command, started with syscall.ForkExec rather than
// os/exec: os.StartProcess first probes, once per process, whether pidfds
// work, by starting and reaping an extra process, which costs an uncontended
// guard about a third of a millisecond (docs/performance.md). Nothing here
// needs a pidfd: signals are only sent before the reap, under mu.
type child struct {
	pid int

	mu     sync.Mutex
	reaped bool
	status syscall.WaitStatus
	err    error // from wait4, if it failed

	// Streams that are not files are copied through pipes, as os/exec
	// does; wait returns once the copies of the output have finished.
	copies sync.WaitGroup
}

// startChild runs path with argv and env, the three streams as its stdin,
// stdout and stderr, and extra as descriptors 3, 4, ...
func startChild(path string, argv, env []string, streams *IOStreams, extra []*os.File, sys *syscall.SysProcAttr) (*child, error) {
	c := &child{}
	var childEnds, parentEnds []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			_ = f.Close()
		}
	}
	var copiers []func()
	fds := make([]uintptr, 0, 3+len(extra))
	for i, s := range []any{streams.In, streams.Out, streams.ErrOut} {
		if f, ok := s.(*os.File); ok && f != nil {
			fds = append(fds, f.Fd())
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(childEnds)
			closeAll(parentEnds)
			return nil, err
		}
		if i == 0 {
			childEnds, parentEnds = append(childEnds, r), append(parentEnds, w)
			fds = append(fds, r.Fd())
			in, _ := s.(io.Reader)
			copiers = append(copiers, func() {
				if in != nil {
					_, _ = io.Copy(w, in) // EPIPE once the command stops reading
				}
				_ = w.Close()
			})
			continue
		}
		childEnds, parentEnds = append(childEnds, w), append(parentEnds, r)
		fds = append(fds, w.Fd())
		out, _ := s.(io.Writer)
		if out == nil {
			out = io.Discard
		}
		c.copies.Add(1)
		copiers = append(copiers, func() {
			defer c.copies.Done()
			_, _ = io.Copy(out, r)
			_ = r.Close()
		})
	}
	for _, f := range extra {
		fds = append(fds, f.Fd())
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: fds, Sys: sys})
	runtime.KeepAlive(streams)
	runtime.KeepAlive(extra)
	closeAll(childEnds)
	if err != nil {
		closeAll(parentEnds)
		return nil, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	c.pid = pid
	for _, cp := range copiers {
		go cp()
	}
	return c, nil
}

// wait blocks until the command has exited, reaps it, and waits for its
// output to be copied. Call it once.
func (c *child) wait() {
	// Where the exit can be awaited without reaping, the reap happens under
	// mu: the pid stays the command's until then, so a signal sent before
	// it cannot reach a process that took the pid over.
	exited := awaitExit(c.pid)
	var status syscall.WaitStatus
	var err error
	if !exited {
		status, err = wait4(c.pid)
	}
	c.mu.Lock()
	if exited {
		status, err = wait4(c.pid)
	}
	c.status, c.err, c.reaped = status, err, true
	c.mu.Unlock()
	c.copies.Wait()
}

func wait4(pid int) (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			return ws, err
		}
	}
}

// signal sends s to the command alone, unless it has been reaped.
func (c *child) signal(s syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.reaped {
		_ = unix.Kill(c.pid, s)
	}
}

// exitCode is the shell's view of how the command ended: its exit code, or
// 128+N if signal N killed it. Valid after wait.
func (c *child) exitCode() int {
	switch {
	case c.err != nil:
		return ExitError
	case c.status.Signaled():
		return 128 + int(c.status.Signal())
	}
	return c.status.ExitStatus()
}
