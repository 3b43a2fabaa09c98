//go:build unix

package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lokt-dev/lokt/internal/testbin"
)

// buildSlim builds lokt as the release does (-tags lokt_slim) into a new
// directory and returns its path.
func buildSlim(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	slim := filepath.Join(dir, "lokt")
	cmd := exec.Command("go", "build", "-tags", "lokt_slim", "-o", slim, "github.com/lokt-dev/lokt/cmd/lokt")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the slim lokt: %v\n%s", err, out)
	}
	return slim
}

// The slim build leaves out the MCP SDK (and the etcd client) and hands the
// commands that need them to lokt-full beside it.
func TestSlimHandsOver(t *testing.T) {
	slim := buildSlim(t)
	out, err := exec.Command("go", "version", "-m", slim).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, heavy := range []string{"modelcontextprotocol", "go.etcd.io", "google.golang.org/grpc"} {
		if strings.Contains(string(out), heavy) {
			t.Errorf("the slim build links %s", heavy)
		}
	}
	root := newRoot(t)
	envv := []string{"PATH=/usr/bin:/bin", "LOKT_ROOT=" + root, "LOKT_OWNER=tester", "GORACE=atexit_sleep_ms=0"}

	// Without lokt-full: a clear error, exit 1.
	cmd := exec.Command(slim, "mcp")
	cmd.Env = envv
	r := wait(t, cmd)
	if r.code != 1 || !strings.Contains(r.stderr, "lokt-full") {
		t.Fatalf("slim mcp without lokt-full: exit %d, stderr %q", r.code, r.stderr)
	}
	// Everything else runs in the slim build itself.
	cmd = exec.Command(slim, "lock", "x", "--pid", "0", "--ttl", "1m")
	cmd.Env = envv
	if r := wait(t, cmd); r.code != 0 {
		t.Fatalf("slim lock: exit %d: %s", r.code, r.stderr)
	}

	// With lokt-full beside it, `lokt mcp` is served by lokt-full.
	if err := os.Symlink(testbin.Path(t), filepath.Join(filepath.Dir(slim), "lokt-full")); err != nil {
		t.Fatal(err)
	}
	// The client keeps stdin open until the reply, as a harness does.
	cmd = exec.Command(slim, "mcp")
	cmd.Env = envv
	stdin, stdout := startPiped(t, cmd)
	if _, err := io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`+"\n"); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(stdout).ReadString('\n')
	_ = stdin.Close()
	_ = cmd.Wait()
	if err != nil || !strings.Contains(reply, `"serverInfo"`) || !strings.Contains(reply, `"id":1`) {
		t.Fatalf("slim mcp with lokt-full: reply %q, %v", reply, err)
	}
}
