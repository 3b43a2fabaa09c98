// Command lokt is a zero-infrastructure lock coordinator. All behaviour lives
// in internal/cli and the public lokt package; this file only hands over.
package main

import (
	"os"

	"github.com/lokt-dev/lokt/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
