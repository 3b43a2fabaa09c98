package cli

import (
	"io"
	"os"
)

// IOStreams is the one place that knows where output goes and whether it is
// a terminal. Tests build one over buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// StderrTTY is true when ErrOut is a terminal (progress lines redraw in
	// place there).
	StderrTTY bool
	// StdoutTTY is true when Out is a terminal (status --watch redraws the
	// screen there, and prints a line per change elsewhere).
	StdoutTTY bool
}

// SystemIO returns the process's standard streams.
func SystemIO() *IOStreams {
	tty := isTerminal(os.Stderr)
	// lokt prints no colour, so NO_COLOR needs no handling.
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, StderrTTY: tty, StdoutTTY: isTerminal(os.Stdout)}
}
