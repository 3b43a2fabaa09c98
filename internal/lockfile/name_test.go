package lockfile

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"", false},
		{".", false},
		{"..", false},
		{"/", false},
		{"a/b", false},
		{"../etc", false},
		{`a\b`, false},
		{"a b", false},
		{" a", false},
		{"a\n", false},
		{".hidden", false},
		{".lck", false},
		{"a\x00b", false},
		{"\x00", false},
		{"héllo", false},
		{"锁", false},
		{"a:b", false},
		{"a*", false},
		{strings.Repeat("a", 129), false},
		{strings.Repeat("a", 128), true},
		{"a", true},
		{"A-Z_a-z.0-9", true},
		{"a..b", true},
		{"trailing.", true},
		{"-dash-first", true},
		{"_", true},
		{"freeze-deploy", true},
		{"x.json", true},
	}
	for _, c := range cases {
		err := ValidateName(c.name)
		if c.ok && err != nil {
			t.Errorf("ValidateName(%q) = %v, want ok", c.name, err)
		}
		if !c.ok {
			if err == nil {
				t.Errorf("ValidateName(%q) accepted", c.name)
				continue
			}
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("ValidateName(%q) error %v does not wrap ErrInvalidName", c.name, err)
			}
			if !strings.Contains(err.Error(), NameRule) {
				t.Errorf("ValidateName(%q) error %q does not show the rule", c.name, err)
			}
		}
	}
}
