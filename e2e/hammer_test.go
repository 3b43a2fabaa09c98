//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lokt-dev/lokt/internal/testbin"
)

// Eight processes each increment a counter file 25 times under guard, all
// with the same (default) identity: labels never decide exclusion, so a
// lost update would show as a total below 200.
func TestGuardCounterHammer(t *testing.T) {
	const procs, iters = 8, 25
	root := newRoot(t)
	counter := filepath.Join(t.TempDir(), "counter")
	if err := os.WriteFile(counter, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The default identity: no LOKT_OWNER, so every process is the same user.
	var envv []string
	for _, kv := range env(root, "COUNTER="+counter) {
		if !strings.HasPrefix(kv, "LOKT_OWNER=") {
			envv = append(envv, kv)
		}
	}
	const critical = `n=$(cat "$COUNTER"); sleep 0.01; echo $((n+1)) > "$COUNTER"`
	var wg sync.WaitGroup
	errs := make(chan string, procs*iters)
	for range procs {
		wg.Go(func() {
			for range iters {
				cmd := exec.Command(testbin.Path(t), "guard", "cnt", "--wait", "--timeout", "5m", "--quiet", "--", "sh", "-c", critical)
				cmd.Env = envv
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- err.Error() + ": " + string(out)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	b, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "200" {
		t.Fatalf("counter is %s after %d guarded increments", got, procs*iters)
	}
	assertReleased(t, root, "cnt")
}
