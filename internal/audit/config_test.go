package audit

import (
	"strings"
	"testing"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		max, keep string
		want      Config
		bad       string
	}{
		{"", "", Config{DefaultMaxBytes, DefaultKeep}, ""},
		{"1048576", "3", Config{1 << 20, 3}, ""},
		{"0", "1", Config{0, 1}, ""},
		{"512K", "", Config{512 << 10, DefaultKeep}, ""},
		{"10M", "", Config{10 << 20, DefaultKeep}, ""},
		{"10MiB", "", Config{10 << 20, DefaultKeep}, ""},
		{"2mb", "", Config{2 << 20, DefaultKeep}, ""},
		{"1G", "", Config{1 << 30, DefaultKeep}, ""},
		{"100b", "", Config{100, DefaultKeep}, ""},
		{"ten", "", Config{DefaultMaxBytes, DefaultKeep}, EnvMaxBytes},
		{"-5", "", Config{DefaultMaxBytes, DefaultKeep}, EnvMaxBytes},
		{"10X", "", Config{DefaultMaxBytes, DefaultKeep}, EnvMaxBytes},
		{"10KK", "", Config{DefaultMaxBytes, DefaultKeep}, "unit"},
		{"99999999999G", "", Config{DefaultMaxBytes, DefaultKeep}, "too large"},
		{"", "0", Config{DefaultMaxBytes, DefaultKeep}, EnvKeep},
		{"", "many", Config{DefaultMaxBytes, DefaultKeep}, EnvKeep},
	} {
		got, err := ConfigFromEnv(env(map[string]string{EnvMaxBytes: tc.max, EnvKeep: tc.keep}))
		if got != tc.want {
			t.Errorf("max=%q keep=%q: got %+v, want %+v", tc.max, tc.keep, got, tc.want)
		}
		if (err != nil) != (tc.bad != "") || (err != nil && !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("max=%q keep=%q: err %v, want one mentioning %q", tc.max, tc.keep, err, tc.bad)
		}
	}
}
