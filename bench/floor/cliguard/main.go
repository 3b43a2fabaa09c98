//go:build unix

// Command cliguard is the floor for a guard built the way lokt must be: a
// cobra command line (the brief's CLI library, which links pflag, net and
// text/template) whose one command catches the signals it has to relay to
// its child (os/signal), starts the child with syscall.ForkExec and waits
// for it. It takes and records no lock: `cliguard guard NAME -- CMD`.
// Whatever lokt guard costs above it is lokt's own work.
package main

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	code := 0
	root := &cobra.Command{Use: "cliguard", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(&cobra.Command{
		Use:  "guard NAME -- CMD [ARGS...]",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			argv := args[cmd.ArgsLenAtDash():]
			path, err := exec.LookPath(argv[0])
			if err != nil {
				return err
			}
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			code, err = run(path, argv)
			return err
		},
	})
	if err := root.Execute(); err != nil {
		os.Stderr.WriteString("cliguard: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(code)
}

// run starts argv (path resolved) with the parent-death signal guard sets,
// and returns its exit status.
func run(path string, argv []string) (int, error) {
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{ //nolint:gosec // runs the command it is given (no shell)
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   sysProcAttr(),
	})
	if err != nil {
		return 0, err
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	return ws.ExitStatus(), err
}
