// Command hello does nothing: the start-up floor of a static Go binary
// (runtime start, no package inits beyond the runtime's). bench/run.sh
// builds it like a lokt release and measures it next to lokt.
package main

func main() {}
