package cli

import (
	"os"
	"syscall"
)

// tree on Windows tracks no process group: the command is one process,
// covered by the holder's pid and its own (the co-holder).
type tree struct{}

func newTree() *tree { return &tree{} }

func (t *tree) sysProcAttr() *syscall.SysProcAttr { return nil }

func (t *tree) started(int) {}

func (t *tree) group() int { return 0 }

func (t *tree) deliveredByTerminal(s os.Signal) bool { return deliveredByTerminal(s) }

func (t *tree) signal(c *child, _ os.Signal) { c.signal(syscall.SIGKILL) }

// terminate has no gentler option than Kill on Windows.
func (t *tree) terminate(c *child) { c.signal(syscall.SIGKILL) }

func (t *tree) kill(c *child) { c.signal(syscall.SIGKILL) }
