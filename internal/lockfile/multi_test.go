package lockfile

import (
	"errors"
	"strings"
	"testing"
)

const validHolder = `{"version":2,"name":"n","lock_id":"a","owner":"o","host":"h","pid":1,"pid_start":"s","acquired_at":"2030-01-01T00:00:00Z","ttl_sec":0}`
const validWaiter = `{"wait_id":"w","mode":"shared","owner":"o","host":"h","pid":2,"pid_start":"s","since":"2030-01-01T00:00:00Z","expires_at":"2030-01-01T00:01:00Z"}`

func multi(mode, slots, holders, waiters string) string {
	return `{"version":2,"name":"n","mode":"` + mode + `"` + slots + `,"holders":[` + holders + `],"waiters":[` + waiters + `]}`
}

func TestDecodeMulti(t *testing.T) {
	ok := map[string]string{
		"slots":        multi("slots", `,"slots":2`, validHolder+","+strings.Replace(validHolder, `"a"`, `"b"`, 1), ""),
		"shared":       multi("shared", "", validHolder, validWaiter),
		"line only":    multi("exclusive", "", "", validWaiter),
		"exclusive+1w": multi("exclusive", "", validHolder, validWaiter),
	}
	for name, in := range ok {
		m, err := DecodeMulti([]byte(in))
		if err != nil || m.Name != "n" {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]string{
		"empty":            "  ",
		"not json":         "{",
		"no version":       `{"name":"n"}`,
		"version 1":        `{"version":1,"name":"n"}`,
		"bad name":         strings.Replace(multi("shared", "", validHolder, ""), `"name":"n","mode"`, `"name":"../x","mode"`, 1),
		"unknown mode":     multi("many", "", validHolder, ""),
		"two exclusive":    multi("exclusive", "", validHolder+","+validHolder, ""),
		"slots 0":          multi("slots", `,"slots":0`, validHolder, ""),
		"slots over":       multi("slots", `,"slots":1`, validHolder+","+validHolder, ""),
		"nobody":           multi("shared", "", "", ""),
		"null holder":      multi("shared", "", "null", ""),
		"foreign holder":   multi("shared", "", strings.Replace(validHolder, `"name":"n"`, `"name":"m"`, 1), ""),
		"holder no id":     multi("shared", "", strings.Replace(validHolder, `"lock_id":"a"`, `"lock_id":""`, 1), ""),
		"waiter no id":     multi("shared", "", validHolder, strings.Replace(validWaiter, `"wait_id":"w"`, `"wait_id":""`, 1)),
		"waiter bad mode":  multi("shared", "", validHolder, strings.Replace(validWaiter, `"mode":"shared"`, `"mode":"x"`, 1)),
		"wrong field type": `{"version":2,"name":"n","mode":"shared","holders":{}}`,
	}
	for name, in := range bad {
		_, err := DecodeMulti([]byte(in))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want corrupt", name, err)
		}
	}
	var fv *FutureVersionError
	if _, err := DecodeMulti([]byte(`{"version":3,"x":1}`)); !errors.As(err, &fv) || fv.Version != 3 {
		t.Errorf("version 3: %v", err)
	}
}
