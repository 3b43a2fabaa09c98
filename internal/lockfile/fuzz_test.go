package lockfile

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeLock: decoding never panics, every error is either corrupt or
// future-version, and whatever decodes survives an encode/decode round trip
// unchanged (so lokt never rewrites a record into something else).
func FuzzDecodeLock(f *testing.F) {
	f.Add([]byte(validLock))
	f.Add([]byte(strings.Replace(validLock, `"pid":1`, `"pid":0,"expires_at":"2030-01-01T01:00:00.123456789+02:00"`, 1)))
	f.Add([]byte(`{"version":99,"name":7}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(``))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"version":1,"name":"x","lock_id":"i","host":"h","pid":1,"acquired_at":"0001-01-01T00:30:00+01:00"}`))
	f.Add([]byte(`{"version":1,"name":"x","lock_id":"i","host":"h","pid":2,"acquired_at":"9999-12-31T23:00:00-02:00"}`))
	f.Add([]byte(`{"version":1,"name":"x","lock_id":"i","host":"h","pid":2,"acquired_at":"0000-01-01T00:00:00+01:00"}`))
	f.Add([]byte(`{"version":1,"name":"x","lock_id":"i","host":"h","pid":2,"acquired_at":"2030-01-01T00:00:00Z","meta":{}}`))
	f.Add([]byte(`{"Version":1,"NAME":"x","lock_id":"\u00e9\ud800","host":"h","pid":2,"acquired_at":"2030-01-01T00:00:00Z","token":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeLock(data)
		if err != nil {
			var fv *FutureVersionError
			if !errors.Is(err, ErrCorrupt) && !errors.As(err, &fv) {
				t.Fatalf("error %v is neither ErrCorrupt nor *FutureVersionError", err)
			}
			return
		}
		enc, err := Encode(l)
		if err != nil {
			t.Fatalf("Encode of a decoded record: %v", err)
		}
		back, err := DecodeLock(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v (original %q)", enc, err, data)
		}
		if len(l.Meta) == 0 {
			l.Meta = nil // "meta":{} is omitted on encode; empty and absent mean the same
		}
		if !reflect.DeepEqual(back, l) {
			t.Fatalf("round trip changed the record:\n got %+v\nwant %+v", back, l)
		}
		enc2, err := Encode(back)
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("encoding is not stable: %q vs %q (%v)", enc, enc2, err)
		}
	})
}

// FuzzValidateName: an accepted name is always a plain, visible file name.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"", ".", "..", "/", "a/b", "a", ".a", "a.", "a b", "é", "a\x00", strings.Repeat("z", 128), strings.Repeat("z", 129), "deploy-prod_1.2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		if len(name) < 1 || len(name) > MaxNameLen {
			t.Fatalf("accepted %q of length %d", name, len(name))
		}
		if strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
			t.Fatalf("accepted unsafe name %q", name)
		}
		if filepath.Base(name) != name || filepath.Clean(name) != name {
			t.Fatalf("accepted %q, which is not a plain file name", name)
		}
		for _, r := range name {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", r) {
				t.Fatalf("accepted %q with character %q outside the rule", name, r)
			}
		}
	})
}
