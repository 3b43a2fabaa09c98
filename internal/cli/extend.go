package cli

import (
	"fmt"
	"strings"
)

// fullBinary is the build of lokt with everything linked in. The release's
// lokt is built with -tags lokt_slim, which leaves out the etcd client and
// the MCP SDK: their package initialisation alone costs milliseconds on
// every start of every command (docs/performance.md), file backend
// included. The slim lokt hands the invocations that need them over to
// lokt-full, installed beside it, by exec: same pid, same parent (which
// `lock` holds for), same arguments and environment. A plain `go build` or
// `go install` of ./cmd/lokt is the full build.
const fullBinary = "lokt-full"

// needsFull reports whether an invocation needs what the slim build leaves
// out: the MCP server, or a backend other than files.
func needsFull(args []string, getenv func(string) string) bool {
	if len(args) > 0 && args[0] == "mcp" {
		return true
	}
	backend := getenv("LOKT_BACKEND")
	for i, a := range args {
		if a == "--" {
			break // guard's command and its flags
		}
		if v, ok := strings.CutPrefix(a, "--backend="); ok {
			backend = v
		} else if a == "--backend" && i+1 < len(args) {
			backend = args[i+1]
		}
	}
	return backend != "" && !strings.HasPrefix(backend, "file:")
}

func errLeftOut(what string) error {
	return fmt.Errorf("this lokt was built without %s (-tags lokt_slim); run %s, which has it, or build lokt without that tag", what, fullBinary)
}
