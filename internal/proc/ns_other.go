//go:build !linux

package proc

// Namespace is "" outside Linux: there is one PID space per host.
func Namespace() string { return "" }
