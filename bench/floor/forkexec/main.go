//go:build unix

// Command forkexec starts its arguments as a child, waits for it, and exits
// with its status: the floor for `lokt guard NAME -- CMD`, which cannot do
// less than start the Go runtime, start CMD and wait for it.
//
// By default it uses os/exec, as guard does; with -raw as the first
// argument it calls syscall.ForkExec and wait4 directly, which skips
// os/exec's path lookup and its one-time pidfd probe (an extra clone on
// Linux), so the two rows' difference is what os/exec itself costs.
package main

import (
	"os"
	"os/exec"
	"syscall"
)

func main() {
	args := os.Args[1:]
	raw := len(args) > 0 && args[0] == "-raw"
	if raw {
		args = args[1:]
	}
	if len(args) == 0 {
		os.Stderr.WriteString("usage: forkexec [-raw] CMD [ARG...]\n")
		os.Exit(2)
	}
	if raw {
		os.Exit(forkExec(args))
	}
	cmd := exec.Command(args[0], args[1:]...) //nolint:gosec // runs the command it is given, like guard (no shell)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if cmd.ProcessState != nil {
			os.Exit(cmd.ProcessState.ExitCode())
		}
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}

// forkExec runs argv[0] (an absolute path: no lookup) and returns its exit
// status.
func forkExec(argv []string) int {
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{ //nolint:gosec // runs the command it is given (no shell)
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	return ws.ExitStatus()
}
