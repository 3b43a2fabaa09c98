package cli

import "testing"

func TestNeedsFull(t *testing.T) {
	env := func(backend string) func(string) string {
		return func(k string) string {
			if k == "LOKT_BACKEND" {
				return backend
			}
			return ""
		}
	}
	for _, c := range []struct {
		args    []string
		backend string
		want    bool
	}{
		{[]string{"mcp"}, "", true},
		{[]string{"lock", "x"}, "", false},
		{[]string{"lock", "x"}, "etcd://127.0.0.1:2379", true},
		{[]string{"status", "--backend", "etcd://h:1"}, "", true},
		{[]string{"status", "--backend=etcd://h:1"}, "", true},
		{[]string{"guard", "x", "--", "tool", "--backend", "etcd://h:1"}, "", false},
		{[]string{"status"}, "file:///tmp/x", false},
	} {
		if got := needsFull(c.args, env(c.backend)); got != c.want {
			t.Errorf("needsFull(%q, LOKT_BACKEND=%q) = %v, want %v", c.args, c.backend, got, c.want)
		}
	}
}
