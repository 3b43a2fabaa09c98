package fsinfo

import "testing"

func TestClassifyDarwin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		local bool
		want  Kind
	}{
		{"apfs", true, KindLocal},
		{"nfs", false, KindNetwork},
		{"smbfs", false, KindNetwork},
		{"macfuse", true, KindFUSE},
	} {
		if got := classifyDarwin(tc.name, tc.local); got.Kind != tc.want || got.Type != tc.name {
			t.Errorf("classifyDarwin(%q, %v) = %v, want kind %s", tc.name, tc.local, got, tc.want)
		}
	}
}
