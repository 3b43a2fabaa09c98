//go:build !lokt_slim

package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "etcd://a:2379", want: "etcd://a:2379/lokt"},
		{in: "etcd://a:2379,b:2380/teams/ci/", want: "etcd://a:2379,b:2380/teams/ci"},
		{in: "etcd://[::1]:2379/x", want: "etcd://[::1]:2379/x"},
		{in: "redis://a:1", err: `unknown scheme "redis"`},
		{in: "a:2379", err: "no scheme"},
		{in: "etcd://", err: "no endpoints"},
		{in: "etcd:///p", err: "no endpoints"},
		{in: "etcd://a", err: "not HOST:PORT"},
		{in: "etcd://a:0", err: "no valid port"},
		{in: "etcd://a:x", err: "no valid port"},
		{in: "etcd://a:1,", err: "not HOST:PORT"},
		{in: "etcd://u:p@a:1", err: "user info"},
		{in: "etcd://a:1/p?x=1", err: "query"},
		{in: "etcd://a:1/a//b", err: "empty"},
		{in: "etcd://a:1/a/../b", err: ".."},
		{in: "etcd://a:1/sp ace", err: "may use only"},
	} {
		sp, err := Parse(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, %v; want an error with %q", tc.in, sp, err, tc.err)
			}
		case err != nil:
			t.Errorf("Parse(%q): %v", tc.in, err)
		case tc.want == "" && sp != nil:
			t.Errorf("Parse(%q) = %v, want nil (file backend)", tc.in, sp)
		case tc.want != "" && (sp == nil || sp.String() != tc.want):
			t.Errorf("Parse(%q) = %v, want %s", tc.in, sp, tc.want)
		}
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := Parse("etcd://a:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env map[string]string
		err string
	}{
		{env: map[string]string{}},
		{env: map[string]string{EnvTimeout: "2s", EnvLeaseTTL: "3s", EnvUser: "u", EnvPassword: "p"}},
		{env: map[string]string{EnvTimeout: "0s"}, err: EnvTimeout},
		{env: map[string]string{EnvLeaseTTL: "1s"}, err: "too short"},
		{env: map[string]string{EnvPassword: "p"}, err: "set both"},
		{env: map[string]string{EnvCACert: filepath.Join(dir, "none")}, err: "no such file"},
		{env: map[string]string{EnvCACert: junk}, err: "no PEM certificate"},
		{env: map[string]string{EnvKey: junk}, err: "set both"},
		{env: map[string]string{EnvCert: junk, EnvKey: junk}, err: EnvCert},
	} {
		cfg, err := sp.Config(func(k string) string { return tc.env[k] })
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%v: got %v, want an error with %q", tc.env, err, tc.err)
		case tc.err == "" && tc.env[EnvUser] != "" && (cfg.Username != "u" || cfg.Password != "p" || cfg.Timeout.String() != "2s"):
			t.Errorf("%v: config %+v", tc.env, cfg)
		}
	}
}
