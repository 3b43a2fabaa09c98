//go:build lokt_slim

package cli

import "fmt"

// fullBinary is the build of lokt with everything linked in. The release's
// lokt is built with -tags lokt_slim, which leaves out the etcd client and
// the MCP SDK: their package initialisation alone costs milliseconds on
// every start of every command (docs/performance.md), file backend
// included. The slim lokt hands the invocations that need them over to
// lokt-full, installed beside it, by exec: same pid, same parent (which
// `lock` holds for), same arguments and environment. A plain `go build` or
// `go install` of ./cmd/lokt is the full build.
const fullBinary = "lokt-full"

func errLeftOut(what string) error {
	return fmt.Errorf("this lokt was built without %s (-tags lokt_slim); run %s, which has it, or build lokt without that tag", what, fullBinary)
}
