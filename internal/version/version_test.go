package version

import "testing"

// Linker-injected values win; without them the build info or "dev" fills in,
// and the protocol version is always reported.
func TestGet(t *testing.T) {
	saved := [3]string{Version, Commit, Date}
	t.Cleanup(func() { Version, Commit, Date = saved[0], saved[1], saved[2] })

	Version, Commit, Date = "v1.2.3", "abc123", "2030-01-01T00:00:00Z"
	got := Get()
	if got.Version != "v1.2.3" || got.Commit != "abc123" || got.Date != "2030-01-01T00:00:00Z" || got.ProtocolVersion != 1 {
		t.Fatalf("Get() = %+v", got)
	}

	Version, Commit, Date = "", "", ""
	got = Get()
	if got.Version == "" || got.Commit == "" || got.Date == "" {
		t.Fatalf("empty fields without ldflags: %+v", got)
	}
	if got.GoVersion == "" {
		t.Errorf("no Go version: %+v", got)
	}
}
