//go:build unix

package e2e

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lokt-dev/lokt/internal/testbin"
)

// slotCritical takes one of three O_EXCL markers (noclobber) for its time
// inside: finding none free means a fourth holder is inside. It records
// when all three were taken at once, looking up to 50 times, 20 ms apart,
// until it or another holder has seen that: early holders wait for the
// others to join (so "three reached" does not hang on the scheduler of a
// loaded machine), later ones leave at once.
const slotCritical = `got=
for i in 0 1 2; do
  if (set -C; : > "$D/slot$i") 2>/dev/null; then got=$i; break; fi
done
if [ -z "$got" ]; then touch "$D/over"; exit 0; fi
n=0
while [ ! -e "$D/full" ] && [ "$n" -lt 50 ]; do
  if [ -e "$D/slot0" ] && [ -e "$D/slot1" ] && [ -e "$D/slot2" ]; then touch "$D/full"; break; fi
  sleep 0.02
  n=$((n+1))
done
rm -f "$D/slot$got"`

// Twelve processes, twenty rounds each, through guard --slots 3: never more
// than three inside at once, and three reached.
func TestSlotsHammer(t *testing.T) {
	const procs, rounds = 12, 20
	root := newRoot(t)
	slotsHammer(t, env(root), procs, rounds)
	assertReleased(t, root, "pool")
	if n := auditCount(t, root, "acquire"); n != procs*rounds {
		t.Errorf("%d acquisitions audited, want %d", n, procs*rounds)
	}
}

// slotsHammer runs procs×rounds guarded slotCriticals through guard
// --slots 3 on the name pool of the root envv names: never a fourth
// inside, and three inside at once at least once.
func slotsHammer(t *testing.T, envv []string, procs, rounds int) {
	t.Helper()
	dir := t.TempDir()
	envv = append(envv[:len(envv):len(envv)], "D="+dir)
	var wg sync.WaitGroup
	errs := make(chan string, procs*rounds)
	for range procs {
		wg.Go(func() {
			for range rounds {
				cmd := exec.Command(testbin.Path(t), "guard", "pool", "--slots", "3", "--wait", "--timeout", "5m", "--quiet", "--", "sh", "-c", slotCritical)
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
	if _, err := os.Stat(filepath.Join(dir, "over")); err == nil {
		t.Fatal("a fourth holder was inside with three slots")
	}
	if _, err := os.Stat(filepath.Join(dir, "full")); err != nil {
		t.Error("three holders were never inside at once")
	}
}

// multiRecord is the part of a version 2 record these tests look at.
type multiRecord struct {
	Version int    `json:"version"`
	Mode    string `json:"mode"`
	Slots   int    `json:"slots"`
	Holders []struct {
		PID  int `json:"pid"`
		PGID int `json:"pgid"`
	} `json:"holders"`
	Waiters []json.RawMessage `json:"waiters"`
}

func readMulti(t *testing.T, root, name string) (multiRecord, bool) {
	t.Helper()
	var m multiRecord
	b, err := os.ReadFile(filepath.Join(root, "locks", name+".json"))
	if err != nil {
		return m, false
	}
	if json.Unmarshal(b, &m) != nil || m.Version != 2 {
		return m, false // between writes, or a lone holder's version 1 record
	}
	return m, true
}

// Slot holders are SIGKILLed at random, with their commands and the
// commands' children: their slots go to the waiters at once (no TTL is
// set, so only liveness can free them), and afterwards nothing is left
// over. LOKT_SLOTS_SOAK=2m runs it longer.
func TestSlotsKilledHoldersFreeTheirSlots(t *testing.T) {
	soak := 8 * time.Second
	if v := os.Getenv("LOKT_SLOTS_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		soak = d
	}
	root := newRoot(t)
	envv := env(root)
	const workers = 6
	stop := make(chan struct{})
	var done atomic.Int64
	var wg sync.WaitGroup
	failures := make(chan string, 100)
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// The command forks a child that would outlive it.
				cmd := exec.Command(testbin.Path(t), "guard", "gpu", "--slots", "3", "--wait", "--timeout", "1m", "--quiet", "--", "sh", "-c", "sleep 0.3 & sleep 0.2; wait")
				cmd.Env = envv
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				switch {
				case err == nil:
					done.Add(1)
				case asExit(err, &ee) && ee.ExitCode() == -1:
					// killed by the test
				default:
					select {
					case failures <- err.Error() + ": " + string(out):
					default:
					}
				}
			}
		})
	}
	killed := 0
	deadline := time.Now().Add(soak)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(100+rand.N(200)) * time.Millisecond)
		m, ok := readMulti(t, root, "gpu")
		if !ok || len(m.Holders) == 0 {
			continue
		}
		h := m.Holders[rand.N(len(m.Holders))]
		if h.PGID > 0 {
			_ = syscall.Kill(-h.PGID, syscall.SIGKILL)
		}
		_ = syscall.Kill(h.PID, syscall.SIGKILL)
		killed++
	}
	close(stop)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	if killed == 0 || done.Load() == 0 {
		t.Fatalf("killed %d holders, %d runs completed: the test exercised nothing", killed, done.Load())
	}
	// Every killed holder's slot is free: three new holders get in (the
	// last processes of a killed tree may still be exiting, so they wait).
	for i := range 3 {
		r := run(t, root, "lock", "gpu", "--slots", "3", "--pid", "0", "--ttl", "1m", "--wait", "--timeout", "30s", "--quiet")
		if r.code != 0 {
			t.Fatalf("slot %d after the kills: exit %d: %s", i+1, r.code, r.stderr)
		}
	}
	m, _ := readMulti(t, root, "gpu")
	if len(m.Holders) != 3 || len(m.Waiters) != 0 {
		t.Fatalf("record after the kills: %+v", m)
	}
	// A holder killed between taking its evidence and naming it in the
	// record (or between leaving the record and removing it) leaves an
	// evidence file nobody holds: it changes no verdict, and prune sweeps
	// it. After that, nothing may be left.
	if r := run(t, root, "status", "--prune-expired"); r.code != 0 {
		t.Fatalf("prune: exit %d: %s", r.code, r.stderr)
	}
	holds, _ := filepath.Glob(filepath.Join(root, "locks", ".gpu.*.hold"))
	if len(holds) != 0 {
		t.Errorf("evidence files left over after prune: %v", holds)
	}
	t.Logf("%d holders killed, %d runs completed", killed, done.Load())
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError) //nolint:errorlint // exec returns it unwrapped
	*ee = e
	return ok
}

const (
	readerCritical = `set -C
: > "$D/r.$$"
[ -e "$D/w" ] && touch "$D/bad"
sleep 0.05
[ -e "$D/w" ] && touch "$D/bad"
rm -f "$D/r.$$"`
	writerCritical = `(set -C; : > "$D/w") 2>/dev/null || touch "$D/bad"
for f in "$D"/r.*; do [ -e "$f" ] && touch "$D/bad"; done
echo "$LOKT_TOKEN" > "$D/wtoken"
sleep 0.05
for f in "$D"/r.*; do [ -e "$f" ] && touch "$D/bad"; done
rm -f "$D/w"`
)

// Readers stream through --shared without a gap; a writer that queues
// behind them never overlaps one, and gets in before a reader that came
// after it (fencing tokens give the order of entry).
func TestSharedWriterIsNotStarvedByReaders(t *testing.T) {
	sharedWriterNotStarved(t, env(newRoot(t)), 3)
}

// sharedWriterNotStarved is that test on the root envv names, for the
// given number of writer rounds.
func sharedWriterNotStarved(t *testing.T, envv []string, rounds int) {
	t.Helper()
	dir := t.TempDir()
	envv = append(envv[:len(envv):len(envv)], "D="+dir)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				cmd := exec.Command(testbin.Path(t), "guard", "cache", "--shared", "--wait", "--timeout", "1m", "--quiet", "--", "sh", "-c", readerCritical)
				cmd.Env = envv
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("reader: %v: %s", err, out)
					return
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	watch := startLokt(t, envv, "status", "cache", "--watch")
	watch.stdout.expect(t, "shared", 30*time.Second)

	for round := range rounds {
		_ = os.Remove(filepath.Join(dir, "wtoken"))
		seen := watch.stdout.count()
		writer := startLokt(t, envv, "guard", "cache", "--wait", "--timeout", "1m", "--quiet", "--", "sh", "-c", writerCritical)
		// Once the writer is in line (or already in), a new reader must
		// come after it.
		watch.stdout.expectAfter(t, seen, "(exclusive)|held by", 30*time.Second)
		late := exec.Command(testbin.Path(t), "guard", "cache", "--shared", "--wait", "--timeout", "1m", "--quiet", "--", "sh", "-c", `echo "$LOKT_TOKEN" > "$D/rtoken"`)
		late.Env = envv
		if out, err := late.CombinedOutput(); err != nil {
			t.Fatalf("late reader: %v: %s", err, out)
		}
		if code := writer.finish(t, time.Minute); code != 0 {
			t.Fatalf("writer exit %d: %s", code, writer.stderr.all())
		}
		wtok, rtok := readToken(t, dir, "wtoken"), readToken(t, dir, "rtoken")
		if wtok >= rtok {
			t.Fatalf("round %d: a reader that queued after the writer got in first (tokens %d, %d)", round, wtok, rtok)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); err == nil {
		t.Fatal("a writer overlapped a reader")
	}
}

// count is how many lines have arrived so far.
func (f *lineFeed) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.lines)
}

// expectAfter is expect for lines after the first n; substr may list
// alternatives separated by "|".
func (f *lineFeed) expectAfter(t *testing.T, n int, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		f.mu.Lock()
		lines, more := f.lines, f.more
		f.mu.Unlock()
		for ; n < len(lines); n++ {
			for _, s := range strings.Split(substr, "|") {
				if strings.Contains(lines[n], s) {
					return lines[n]
				}
			}
		}
		select {
		case <-more:
		case <-f.eof:
			t.Fatalf("stream ended without a line containing %q; got:\n%s", substr, f.all())
		case <-deadline:
			t.Fatalf("no line containing %q after %s; got:\n%s", substr, timeout, f.all())
		}
	}
}

func readToken(t *testing.T, dir, name string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %q", name, b)
	}
	return n
}

// status --watch without a terminal prints one line per change, in line
// order, and stops on Ctrl-C.
func TestStatusWatchLines(t *testing.T) {
	root := newRoot(t)
	envv := env(root)
	watch := startLokt(t, envv, "status", "w", "--watch")
	watch.stdout.expect(t, "free", 30*time.Second)
	if r := run(t, root, "lock", "w", "--slots", "1", "--pid", "0", "--ttl", "1m"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	watch.stdout.expect(t, "w: 1/1 slots tester@", 30*time.Second)
	waiter := startLokt(t, envv, "lock", "w", "--slots", "1", "--pid", "0", "--ttl", "1m", "--wait", "--timeout", "1m", "--quiet")
	line := watch.stdout.expect(t, "waiting: #1 tester@", 30*time.Second)
	if !strings.Contains(line, "(a slot of 1)") {
		t.Errorf("waiter line %q", line)
	}
	if r := run(t, root, "unlock", "w", "--force"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if code := waiter.finish(t, time.Minute); code != 0 {
		t.Fatalf("waiter exit %d: %s", code, waiter.stderr.all())
	}
	watch.stdout.expectAfter(t, watch.stdout.count()-1, "w: 1/1 slots", 30*time.Second)
	watch.signal(t, syscall.SIGINT)
	if code := watch.finish(t, 30*time.Second); code != 0 {
		t.Fatalf("watch exit %d after SIGINT", code)
	}
}
