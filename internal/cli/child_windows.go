package cli

import (
	"os"
	"os/exec"
	"syscall"
)

// child is guard's command; Windows has no fork, so os/exec starts it.
type child struct {
	pid int
	cmd *exec.Cmd
}

func startChild(path string, argv, env []string, streams *IOStreams, extra []*os.File, sys *syscall.SysProcAttr) (*child, error) {
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Stdin: streams.In, Stdout: streams.Out, Stderr: streams.ErrOut, ExtraFiles: extra, SysProcAttr: sys}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &child{pid: cmd.Process.Pid, cmd: cmd}, nil
}

// wait blocks until the command has exited and its output is copied.
func (c *child) wait() { _ = c.cmd.Wait() }

// signal can only kill on Windows.
func (c *child) signal(syscall.Signal) { _ = c.cmd.Process.Kill() }

func (c *child) exitCode() int {
	if c.cmd.ProcessState == nil {
		return ExitError
	}
	return c.cmd.ProcessState.ExitCode()
}
