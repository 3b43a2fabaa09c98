//go:build lokt_slim

package cli

import "context"

// runMCP is never reached in the slim build: Main hands `lokt mcp` over to
// the full build first (extend.go).
func runMCP(context.Context, *Factory, *MCPOptions) error { return errLeftOut("the MCP server") }
