//go:build !linux

package cli

// processName would name a running process; outside Linux the name is left
// out of messages rather than paid for with a ps(1) call.
func processName(int) string { return "" }
