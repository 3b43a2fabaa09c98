// Package version holds build information injected by the linker and the
// protocol version lokt speaks on disk.
package version

import "runtime/debug"

// Set with -ldflags "-X github.com/lokt-dev/lokt/internal/version.Version=..."
// by release builds; left empty by plain `go build`.
var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Protocol is the lockfile/audit schema version this build reads and writes.
const Protocol = 1

// Info is what `lokt version` reports.
type Info struct {
	Version         string `json:"version"`
	Commit          string `json:"commit"`
	Date            string `json:"date"`
	ProtocolVersion int    `json:"protocol_version"`
	GoVersion       string `json:"go_version"`
}

// Get returns the linker-injected values, falling back to what the Go
// toolchain recorded (for `go install ...@vX` builds) and finally to "dev".
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date, ProtocolVersion: Protocol}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.GoVersion = bi.GoVersion
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.Date == "" {
					info.Date = s.Value
				}
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if info.Date == "" {
		info.Date = "unknown"
	}
	return info
}
