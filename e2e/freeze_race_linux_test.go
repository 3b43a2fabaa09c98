package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A freeze and an acquisition of the same name are ordered by the name's
// one critical section (the flock on locks/.NAME.lck): once freeze has
// returned, no acquisition that started before it can still succeed. The
// test holds that flock itself to widen the window, lets an acquirer and a
// freeze block on it (in both orders), and releases both at once; whichever
// the kernel lets in first, the audit log must never show a successful
// acquire after the freeze (by the times taken inside the section).
func TestFreezeOrderedWithAcquire(t *testing.T) {
	root := newRoot(t)
	orders := map[string]int{}
	for round := range 4 {
		name := fmt.Sprintf("deploy%d", round)
		// Creates the root and the name's guard file.
		if r := contend(t, root, name); r.code != 0 {
			t.Fatalf("first guard: exit %d: %s", r.code, r.stderr)
		}
		lck := filepath.Join(root, "locks", "."+name+".lck")
		f, err := os.OpenFile(lck, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		acquire := []string{"guard", name, "--", "true"}
		if round >= 2 {
			acquire = []string{"lock", name, "--pid", "0", "--ttl", "1m"}
		}
		// The kernel tends to let the first waiter in first: each order
		// is tried. An acquirer that blocks after the freeze began must
		// still see it once it gets in.
		var acq, frz *treeProc
		startAcq := func() {
			acq = startTree(t, env(root), false, append([]string{loktBin(t)}, acquire...)...)
			waitBlockedOn(t, lck, acq, acquire[0])
		}
		startFreeze := func() {
			frz = startTree(t, env(root), false, loktBin(t), "freeze", name, "--ttl", "1m")
			waitBlockedOn(t, lck, frz, "freeze")
		}
		if round%2 == 0 {
			startAcq()
			startFreeze()
		} else {
			startFreeze()
			startAcq()
		}
		if !acq.running() || !frz.running() {
			t.Fatal("a blocked process exited while the test held the critical section")
		}
		if err := f.Close(); err != nil { // drops the flock
			t.Fatal(err)
		}
		if code := frz.finish(t); code != 0 {
			t.Fatalf("freeze: exit %d: %s", code, frz.errText())
		}
		code := acq.finish(t)
		// Audit lines are appended after the critical section, so their
		// order in the file need not be the order of the changes; the
		// times taken inside it are: the acquire event's ts and the freeze
		// record's frozen_at.
		frozenAt := frozenAt(t, root, name)
		var acquired []time.Time
		var denied bool
		for _, rec := range auditRecords(t, root) {
			switch {
			case rec.Name != name:
			case rec.Event == "acquire":
				acquired = append(acquired, rec.TS.Time)
			case rec.Event == "freeze-deny":
				denied = true
			}
		}
		// acquired[0] is the first guard's, before anything blocked.
		if len(acquired) > 2 {
			t.Fatalf("%d acquisitions of %s: %v", len(acquired), name, acquired)
		}
		late := len(acquired) == 2 && !acquired[1].Before(frozenAt)
		switch {
		case late:
			t.Fatalf("%s acquired %s at %s, after it was frozen at %s (exit %d)", acquire[0], name, acquired[1], frozenAt, code)
		case code == 0 && len(acquired) == 2:
			orders[acquire[0]+" first"]++
		case code == 2 && denied && len(acquired) == 1:
			if !strings.Contains(acq.errText(), "frozen") {
				t.Errorf("%s denied without naming the freeze: %s", acquire[0], acq.errText())
			}
			orders["freeze first"]++
		default:
			t.Fatalf("%s: exit %d, acquisitions %v, freeze-deny %v; stderr: %s", acquire[0], code, acquired, denied, acq.errText())
		}
	}
	t.Logf("who got the critical section first: %v", orders)
}

// waitBlockedOn waits until /proc/locks shows p waiting for the flock on
// path: p is then inside its attempt, past any check made before it.
// frozenAt reads frozen_at from the freeze record of name.
func frozenAt(t *testing.T, root, name string) time.Time {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "freezes", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		FrozenAt time.Time `json:"frozen_at"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.FrozenAt.IsZero() {
		t.Fatalf("freeze record of %s: %v\n%s", name, err, b)
	}
	return f.FrozenAt
}

func waitBlockedOn(t *testing.T, path string, p *treeProc, what string) {
	t.Helper()
	pollFor(t, waitLong, what+" to block on "+filepath.Base(path), func() bool {
		if !p.running() {
			t.Fatalf("%s exited (code %d) instead of blocking on %s: %s", what, p.code, path, p.errText())
		}
		return slices.Contains(flockWaiters(t, path), p.pid())
	})
}
