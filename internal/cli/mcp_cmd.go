package cli

import "github.com/spf13/cobra"

// MCPOptions are the parsed flags of `lokt mcp`. It has none: the lock root
// comes from the environment and the working directory, as for every
// command, and the agent's name from $LOKT_AGENT_ID or the client.
type MCPOptions struct{}

func newCmdMCP(f *Factory, runF func(*MCPOptions) error) *cobra.Command {
	opts := &MCPOptions{}
	return &cobra.Command{
		Use:   "mcp",
		Short: "Serve locks to a coding agent over MCP (stdio), held for the agent's session",
		Long: `Serve the Model Context Protocol on stdin/stdout, with the tools lock,
unlock, status and why. Register it as an MCP server in your agent harness:
the harness runs one per session, and every lock taken through it is held by
this process, so it is released when the session ends, crashed or not.

The agent is named by $LOKT_AGENT_ID, else by the client's name and version.
stdout carries only protocol messages; diagnostics go to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runMCP(cmd.Context(), f, opts)
		},
	}
}
