package doctor

import "os"

// umask: Windows has none; files get ACLs from their directory.
func umask() (int, bool) { return 0, false }

// groupName: Windows has no owning group in this sense.
func groupName(os.FileInfo) string { return "?" }
