package cli

import "os"

// relayedSignals: Windows delivers Ctrl-C to every process on the console,
// the child included, so guard only needs to survive it.
var relayedSignals = []os.Signal{os.Interrupt}

func deliveredByTerminal(os.Signal) bool { return true }
