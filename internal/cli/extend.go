package cli

import "strings"

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
