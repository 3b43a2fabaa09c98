package main

import "syscall"

// sysProcAttr is what lokt guard sets on Linux: the parent-death signal.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
