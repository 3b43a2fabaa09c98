package lockfile

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// nineDigitUTC is the exact shape the protocol promises for timestamps.
var nineDigitUTC = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$`)

func fullLock(t *testing.T) *Lock {
	t.Helper()
	east := time.FixedZone("UTC+5", 5*3600)
	acq := time.Date(2031, 3, 4, 10, 11, 12, 123456789, east)
	ren := time.Date(2031, 3, 4, 10, 12, 0, 0, east) // no fraction: still 9 digits
	exp := time.Date(2031, 3, 4, 11, 11, 12, 5, time.UTC)
	return &Lock{
		Version: Version, Name: "deploy-prod_1.2", LockID: "0123456789abcdef",
		Owner: "alice", AgentID: "agent-7", Host: "build-3", PID: 4242,
		PIDStart: "98765", ChildPID: 4343, ChildStart: "98770",
		AcquiredAt: NewTime(acq), RenewedAt: TimePtr(ren), ExpiresAt: TimePtr(exp),
		TTLSec: 3600, Token: 17, Meta: map[string]string{"ci": "yes", "job": "42"},
	}
}

func TestLockRoundTripEveryField(t *testing.T) {
	in := fullLock(t)
	data, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(data), "}\n") {
		t.Errorf("encoding does not end with a newline: %q", data)
	}

	// The wire form: every field under its protocol name, times in UTC
	// with exactly nine fractional digits.
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version": 1.0, "name": "deploy-prod_1.2", "lock_id": "0123456789abcdef",
		"owner": "alice", "agent_id": "agent-7", "host": "build-3", "pid": 4242.0,
		"pid_start": "98765", "child_pid": 4343.0, "child_start": "98770",
		"acquired_at": "2031-03-04T05:11:12.123456789Z",
		"renewed_at":  "2031-03-04T05:12:00.000000000Z",
		"expires_at":  "2031-03-04T11:11:12.000000005Z",
		"ttl_sec":     3600.0, "token": 17.0,
		"meta": map[string]any{"ci": "yes", "job": "42"},
	}
	if !reflect.DeepEqual(raw, want) {
		t.Errorf("wire form:\n got %v\nwant %v", raw, want)
	}
	for _, k := range []string{"acquired_at", "renewed_at", "expires_at"} {
		if s, _ := raw[k].(string); !nineDigitUTC.MatchString(s) {
			t.Errorf("%s = %q, not RFC 3339 UTC with 9 fractional digits", k, s)
		}
	}

	out, err := DecodeLock(data)
	if err != nil {
		t.Fatalf("DecodeLock(Encode(l)): %v", err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	if out.AcquiredAt.Location() != time.UTC {
		t.Errorf("decoded time is in %v, want UTC", out.AcquiredAt.Location())
	}
}

func TestLockOptionalFieldsOmitted(t *testing.T) {
	l := &Lock{
		Version: Version, Name: "x", LockID: "id", Owner: "o", Host: "h", PID: 1,
		AcquiredAt: NewTime(time.Unix(0, 0)),
	}
	data, err := Encode(l)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"agent_id", "child_pid", "child_start", "renewed_at", "expires_at", "token", "meta"} {
		if _, ok := raw[k]; ok {
			t.Errorf("optional %s present in %s", k, data)
		}
	}
	// Required fields are always written, even when zero.
	for _, k := range []string{"version", "name", "lock_id", "owner", "host", "pid", "pid_start", "acquired_at", "ttl_sec"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("required %s missing from %s", k, data)
		}
	}
	back, err := DecodeLock(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, l) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, l)
	}
}

func TestFreezeRoundTrip(t *testing.T) {
	in := &Freeze{
		Version: Version, Name: "deploy", Owner: "bob", AgentID: "a1", Host: "h", PID: 9,
		Reason: "release in progress", FrozenAt: NewTime(time.Date(2030, 1, 2, 3, 4, 5, 6, time.Local)),
		ExpiresAt: NewTime(time.Date(2030, 1, 2, 4, 4, 5, 6, time.UTC)), TTLSec: 3600,
	}
	data, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"frozen_at", "expires_at"} {
		if s, _ := raw[k].(string); !nineDigitUTC.MatchString(s) {
			t.Errorf("%s = %q, not RFC 3339 UTC with 9 fractional digits", k, s)
		}
	}
	out, err := DecodeFreeze(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestTimeAcceptsAnyRFC3339(t *testing.T) {
	for in, want := range map[string]time.Time{
		`"2030-01-02T03:04:05Z"`:           time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		`"2030-01-02T03:04:05.5+02:00"`:    time.Date(2030, 1, 2, 1, 4, 5, 5e8, time.UTC),
		`"2030-01-02T03:04:05.000000001Z"`: time.Date(2030, 1, 2, 3, 4, 5, 1, time.UTC),
	} {
		var got Time
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s: got %v, want %v in UTC", in, got.Time, want)
		}
	}
	for _, in := range []string{`12`, `"yesterday"`, `"2030-01-02"`, `""`,
		// Valid RFC 3339, but UTC puts them outside four-digit years, where
		// they could not be written back.
		`"9999-12-31T23:00:00-02:00"`, `"0000-01-01T00:00:00+01:00"`} {
		var got Time
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("%s: accepted as %v", in, got.Time)
		}
	}
}

// validLock is a minimal record that decodes; cases below break one thing.
const validLock = `{"version":1,"name":"x","lock_id":"id","owner":"o","host":"h","pid":1,"pid_start":"s","acquired_at":"2030-01-01T00:00:00Z","ttl_sec":0}`

func TestDecodeLockValidBaseline(t *testing.T) {
	if _, err := DecodeLock([]byte(validLock)); err != nil {
		t.Fatalf("baseline record rejected: %v", err)
	}
	// pid 0 is fine when the lock expires.
	pid0 := strings.Replace(validLock, `"pid":1`, `"pid":0,"expires_at":"2030-01-01T01:00:00Z"`, 1)
	if _, err := DecodeLock([]byte(pid0)); err != nil {
		t.Fatalf("pid 0 with expires_at rejected: %v", err)
	}
}

func TestDecodeLockCorrupt(t *testing.T) {
	cases := map[string]string{
		"empty":              ``,
		"whitespace":         " \n\t ",
		"garbage":            "\x00\x01not json",
		"truncated":          validLock[:len(validLock)/2],
		"array":              `[1,2,3]`,
		"no version":         `{"name":"x","lock_id":"id","host":"h","pid":1,"acquired_at":"2030-01-01T00:00:00Z"}`,
		"null version":       strings.Replace(validLock, `"version":1`, `"version":null`, 1),
		"string version":     strings.Replace(validLock, `"version":1`, `"version":"1"`, 1),
		"version 0":          strings.Replace(validLock, `"version":1`, `"version":0`, 1),
		"version -3":         strings.Replace(validLock, `"version":1`, `"version":-3`, 1),
		"only version":       `{"version":1}`,
		"missing name":       strings.Replace(validLock, `"name":"x",`, ``, 1),
		"missing lock_id":    strings.Replace(validLock, `"lock_id":"id",`, ``, 1),
		"missing host":       strings.Replace(validLock, `"host":"h",`, ``, 1),
		"missing acquired":   strings.Replace(validLock, `,"acquired_at":"2030-01-01T00:00:00Z"`, ``, 1),
		"negative pid":       strings.Replace(validLock, `"pid":1`, `"pid":-1`, 1),
		"negative child pid": strings.Replace(validLock, `"pid":1`, `"pid":1,"child_pid":-2`, 1),
		"negative ttl":       strings.Replace(validLock, `"ttl_sec":0`, `"ttl_sec":-5`, 1),
		"pid 0 no expiry":    strings.Replace(validLock, `"pid":1`, `"pid":0`, 1),
		"bad name slash":     strings.Replace(validLock, `"name":"x"`, `"name":"../x"`, 1),
		"bad name dot":       strings.Replace(validLock, `"name":"x"`, `"name":".x"`, 1),
		"pid wrong type":     strings.Replace(validLock, `"pid":1`, `"pid":"1"`, 1),
		"bad time":           strings.Replace(validLock, `2030-01-01T00:00:00Z`, `tomorrow`, 1),
		"time wrong type":    strings.Replace(validLock, `"2030-01-01T00:00:00Z"`, `1700000000`, 1),
		"acquired_at null":   strings.Replace(validLock, `"2030-01-01T00:00:00Z"`, `null`, 1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			l, err := DecodeLock([]byte(in))
			if err == nil {
				t.Fatalf("DecodeLock(%q) = %+v, want an error", in, l)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			var fv *FutureVersionError
			if errors.As(err, &fv) {
				t.Errorf("corrupt input reported as future version: %v", err)
			}
		})
	}
}

func TestDecodeFutureVersion(t *testing.T) {
	cases := map[string]string{
		"v2":  strings.Replace(validLock, `"version":1`, `"version":2`, 1),
		"v99": strings.Replace(validLock, `"version":1`, `"version":99`, 1),
		// A newer protocol may change anything else; it is still "newer",
		// never "corrupt" (which would let lokt delete it).
		"v99 wrong types": `{"version":99,"name":42,"pid":"abc","acquired_at":true,"meta":[1,2]}`,
		"v99 only":        `{"version":99}`,
		"v99 extra":       `{"version":99,"lock_id":{"nested":"object"},"host":null}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			want := 99
			if name == "v2" {
				want = 2
			}
			for kind, decode := range map[string]func([]byte) error{
				"lock":   func(b []byte) error { _, err := DecodeLock(b); return err },
				"freeze": func(b []byte) error { _, err := DecodeFreeze(b); return err },
			} {
				err := decode([]byte(in))
				var fv *FutureVersionError
				if !errors.As(err, &fv) {
					t.Fatalf("%s: error = %v, want *FutureVersionError", kind, err)
				}
				if fv.Version != want {
					t.Errorf("%s: Version = %d, want %d", kind, fv.Version, want)
				}
				if errors.Is(err, ErrCorrupt) {
					t.Errorf("%s: future version error also wraps ErrCorrupt", kind)
				}
				if !strings.Contains(err.Error(), "upgrade") {
					t.Errorf("%s: message %q does not tell the user to upgrade", kind, err)
				}
			}
		})
	}
}

const validFreeze = `{"version":1,"name":"x","owner":"o","host":"h","pid":1,"frozen_at":"2030-01-01T00:00:00Z","expires_at":"2030-01-01T01:00:00Z","ttl_sec":3600}`

func TestDecodeFreezeErrors(t *testing.T) {
	if _, err := DecodeFreeze([]byte(validFreeze)); err != nil {
		t.Fatalf("baseline freeze rejected: %v", err)
	}
	cases := map[string]string{
		"empty":          ``,
		"garbage":        `}{`,
		"version 0":      strings.Replace(validFreeze, `"version":1`, `"version":0`, 1),
		"no name":        strings.Replace(validFreeze, `"name":"x",`, ``, 1),
		"no expires_at":  strings.Replace(validFreeze, `,"expires_at":"2030-01-01T01:00:00Z"`, ``, 1),
		"no frozen_at":   strings.Replace(validFreeze, `"frozen_at":"2030-01-01T00:00:00Z",`, ``, 1),
		"bad name":       strings.Replace(validFreeze, `"name":"x"`, `"name":"a/b"`, 1),
		"reason as list": strings.Replace(validFreeze, `"owner":"o"`, `"owner":"o","reason":["x"]`, 1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if f, err := DecodeFreeze([]byte(in)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeFreeze(%q) = %+v, %v; want ErrCorrupt", in, f, err)
			}
		})
	}
}

func TestEncodeError(t *testing.T) {
	if _, err := Encode(map[string]any{"c": make(chan int)}); err == nil {
		t.Fatal("Encode of an unencodable value succeeded")
	}
}

// A newer lokt of protocol 1 may add optional fields; rewriting its record
// here (refresh, renew) must carry them over, and no known field may be
// kept twice under a differently cased key.
func TestUnknownFieldsSurviveRewrite(t *testing.T) {
	in := `{"version":1,"name":"x","lock_id":"id","owner":"o","host":"h","pid":1,"pid_start":"s",` +
		`"acquired_at":"2030-01-01T00:00:00Z","ttl_sec":0,"Owner_Note":"a & b","lease":{"node": "n1", "epoch": 3},"OWNER":"o"}`
	l, err := DecodeLock([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Extra) != 2 || string(l.Extra["lease"]) != `{"node":"n1","epoch":3}` {
		t.Fatalf("Extra = %q", l.Extra)
	}
	l.TTLSec = 60
	out, err := Encode(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"lease": {`, `"epoch": 3`, `"Owner_Note": "a & b"`, `"ttl_sec": 60`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rewritten record lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), `"OWNER"`) {
		t.Errorf("a differently cased known key was kept:\n%s", out)
	}
	back, err := DecodeLock(out)
	if err != nil || !reflect.DeepEqual(back, l) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}
