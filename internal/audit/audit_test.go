package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lokt-dev/lokt"
)

var (
	t0     = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	actor  = lokt.Actor{Identity: lokt.Identity{Owner: "alice", AgentID: "agent-7"}, Holder: lokt.Holder{Host: "h1", PID: 42, Start: "s"}}
	expiry = t0.Add(time.Hour)
	lock   = &lokt.Lock{
		Name: "deploy", LockID: "L1", Owner: "bob", Holder: lokt.Holder{Host: "h2", PID: 7},
		AcquiredAt: t0.Add(-time.Minute), ExpiresAt: &expiry, TTL: time.Hour, Token: 9,
	}
	freeze = &lokt.Freeze{Name: "deploy", Owner: "carol", Host: "h3", PID: 3, Reason: "release", FrozenAt: t0, ExpiresAt: t0.Add(30 * time.Minute)}
)

// line renders an event the way the log stores it, as a generic map, so the
// test sees exactly the JSON fields and nothing of the Go types.
func line(t *testing.T, e lokt.Event) map[string]any {
	t.Helper()
	rec := FromEvent(e)
	b, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), "\n") || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("a record must be exactly one line: %q", b)
	}
	if !strings.HasPrefix(string(b), `{"ts":`) {
		t.Fatalf("a record must start with ts (the torn-line recovery relies on it): %q", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRecordCommonFields(t *testing.T) {
	m := line(t, lokt.Event{Time: t0, Type: lokt.EventAcquire, Name: "deploy", Actor: actor, Lock: lock})
	want := map[string]any{
		"ts": "2030-01-02T03:04:05.000000006Z", "event": "acquire", "name": "deploy", "lock_id": "L1",
		"owner": "alice", "host": "h1", "pid": 42.0, "agent_id": "agent-7",
		"ttl_sec": 3600.0, "expires_at": "2030-01-02T04:04:05.000000006Z", "token": 9.0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("acquire has fields %v, want exactly %v", m, want)
	}
}

func TestRecordPerEvent(t *testing.T) {
	noTTL := *lock
	noTTL.ExpiresAt, noTTL.TTL = nil, 0
	for _, tc := range []struct {
		ev      lokt.Event
		present []string
		absent  []string
	}{
		{lokt.Event{Type: lokt.EventRefresh, Lock: &noTTL}, []string{"ttl_sec", "token"}, []string{"expires_at", "holder"}},
		{lokt.Event{Type: lokt.EventRenew, Lock: lock}, []string{"ttl_sec", "expires_at", "token"}, []string{"holder"}},
		{lokt.Event{Type: lokt.EventRelease, Lock: lock}, []string{"holder"}, []string{"ttl_sec", "reason"}},
		{lokt.Event{Type: lokt.EventDeny, Lock: lock}, []string{"holder"}, []string{"ttl_sec"}},
		{lokt.Event{Type: lokt.EventStaleBreak, Lock: lock, Reason: "dead"}, []string{"holder", "reason"}, nil},
		{lokt.Event{Type: lokt.EventAutoPrune, Lock: lock, Reason: "expired"}, []string{"holder", "reason"}, nil},
		{lokt.Event{Type: lokt.EventForceBreak, Lock: lock, Reason: "live"}, []string{"holder", "reason"}, nil},
		{lokt.Event{Type: lokt.EventCorruptBreak, Reason: "bad json"}, []string{"reason"}, []string{"holder", "token"}},
		{lokt.Event{Type: lokt.EventLost, Lock: lock, Reason: "force-broken"}, []string{"holder", "reason"}, nil},
		{lokt.Event{Type: lokt.EventFreeze, Freeze: freeze}, []string{"reason", "expires_at", "ttl_sec"}, []string{"frozen_by", "holder"}},
		{lokt.Event{Type: lokt.EventUnfreeze, Freeze: freeze}, []string{"reason", "expires_at", "frozen_by"}, nil},
		{lokt.Event{Type: lokt.EventFreezeDeny, Freeze: freeze}, []string{"reason", "expires_at", "frozen_by"}, nil},
		{lokt.Event{Type: lokt.EventAutoPrune, Freeze: freeze, Reason: "freeze expired"}, []string{"reason", "frozen_by"}, nil},
		// The engine's record of a corrupt freeze file it removed.
		{lokt.Event{Type: lokt.EventUnfreeze, Freeze: &lokt.Freeze{Name: "deploy", Reason: "corrupt freeze file removed"}}, []string{"reason"}, []string{"frozen_by", "expires_at", "ttl_sec"}},
	} {
		tc.ev.Time, tc.ev.Name, tc.ev.Actor = t0, "deploy", actor
		m := line(t, tc.ev)
		for _, k := range append([]string{"ts", "event", "name", "lock_id", "owner", "host", "pid", "agent_id"}, tc.present...) {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %s in %v", tc.ev.Type, k, m)
			}
		}
		for _, k := range tc.absent {
			if _, ok := m[k]; ok {
				t.Errorf("%s: unexpected %s in %v", tc.ev.Type, k, m)
			}
		}
		if m["event"] != string(tc.ev.Type) || m["owner"] != "alice" {
			t.Errorf("%s: event/actor wrong: %v", tc.ev.Type, m)
		}
		if tc.ev.Lock != nil && m["lock_id"] != "L1" {
			t.Errorf("%s: lock_id = %v, want the lock concerned", tc.ev.Type, m["lock_id"])
		}
		if h, ok := m["holder"].(map[string]any); ok && (h["owner"] != "bob" || h["pid"] != 7.0 || h["lock_id"] != "L1") {
			t.Errorf("%s: holder = %v, want bob's lock", tc.ev.Type, h)
		}
	}
}

func TestRecordFreezeFields(t *testing.T) {
	m := line(t, lokt.Event{Time: t0, Type: lokt.EventFreezeDeny, Name: "deploy", Actor: actor, Freeze: freeze})
	if m["ttl_sec"] != 1800.0 || m["reason"] != "release" || m["lock_id"] != "" {
		t.Errorf("freeze-deny fields: %v", m)
	}
	fb := m["frozen_by"].(map[string]any)
	if fb["owner"] != "carol" || fb["reason"] != "release" {
		t.Errorf("frozen_by = %v", fb)
	}
	// An explicit reason (auto-prune's) wins over the freeze's own.
	m = line(t, lokt.Event{Time: t0, Type: lokt.EventAutoPrune, Name: "deploy", Actor: actor, Freeze: freeze, Reason: "freeze expired"})
	if m["reason"] != "freeze expired" {
		t.Errorf("auto-prune reason = %v", m["reason"])
	}
}

func TestRecordDefaultsAndLimits(t *testing.T) {
	before := time.Now()
	long := strings.Repeat("é", maxReason) // two bytes each: the cut must not split one
	rec := FromEvent(lokt.Event{Type: lokt.EventCorruptBreak, Name: "x", Reason: long})
	if rec.TS.Before(before) {
		t.Errorf("a zero event time must become now, got %v", rec.TS)
	}
	if len(rec.Reason) > maxReason+3 || !strings.HasSuffix(rec.Reason, "...") {
		t.Errorf("reason not truncated: %d bytes", len(rec.Reason))
	}
	if !strings.HasPrefix(long, strings.TrimSuffix(rec.Reason, "...")) {
		t.Error("truncation split a character")
	}
}
