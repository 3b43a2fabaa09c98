package fsinfo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetectRealDirectory(t *testing.T) {
	dir := t.TempDir()
	info, err := Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Type == "" || info.Kind == "" {
		t.Fatalf("Detect(%s) = %+v, want a type and a kind", dir, info)
	}
	// Test machines keep their temporary directory on a local disk.
	if info.Remote() {
		t.Fatalf("Detect(%s) = %v, want a local filesystem", dir, info)
	}
}

func TestDetectMissingPathUsesAncestor(t *testing.T) {
	dir := t.TempDir()
	want, err := Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Detect(filepath.Join(dir, "not", "yet", "created"))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("missing path: got %v, want its ancestor's %v", got, want)
	}
}

func TestExisting(t *testing.T) {
	dir := t.TempDir()
	if p, err := Existing(filepath.Join(dir, "a", "b")); err != nil || p != dir {
		t.Fatalf("Existing = %q, %v; want %q", p, err, dir)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Below a regular file is not "missing" but impossible: an error.
	if _, err := Existing(filepath.Join(file, "x")); err == nil {
		t.Fatal("Existing below a regular file: want an error")
	}
	if _, err := Detect(filepath.Join(file, "x")); err == nil {
		t.Fatal("Detect below a regular file: want an error")
	}
}

func TestKinds(t *testing.T) {
	for _, tc := range []struct {
		kind   Kind
		remote bool
		risk   string
	}{
		{KindLocal, false, ""},
		{KindUnknown, false, ""},
		{KindNetwork, true, "flock(2) may be emulated"},
		{KindCluster, true, "cluster lock manager"},
		{KindFUSE, true, "FUSE"},
	} {
		i := Info{Type: "x", Kind: tc.kind}
		if i.Remote() != tc.remote {
			t.Errorf("%s: Remote() = %v", tc.kind, i.Remote())
		}
		if got := i.Risks(); (tc.risk == "") != (got == "") || !strings.Contains(got, tc.risk) {
			t.Errorf("%s: Risks() = %q, want it to mention %q", tc.kind, got, tc.risk)
		}
		if i.String() != "x ("+string(tc.kind)+")" {
			t.Errorf("String() = %q", i.String())
		}
	}
}

func TestRequireLocalSet(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "0": false, "false": false, "No": false, " off ": false,
		"1": true, "true": true, "yes": true, "on": true, "please": true,
	} {
		got := RequireLocalSet(func(k string) string {
			if k == EnvRequireLocal {
				return v
			}
			return ""
		})
		if got != want {
			t.Errorf("%s=%q: got %v, want %v", EnvRequireLocal, v, got, want)
		}
	}
}

func strict(k string) string {
	if k == EnvRequireLocal {
		return "1"
	}
	return ""
}

func TestCheckRequireLocal(t *testing.T) {
	dir := t.TempDir()
	relaxed := func(string) string { return "" }

	restore := Simulate("nfs", KindNetwork)
	defer restore()
	if err := CheckRequireLocal(relaxed, dir); err != nil {
		t.Fatalf("not strict: %v", err)
	}
	err := CheckRequireLocal(strict, dir)
	var refusal *RefusalError
	if !errors.As(err, &refusal) {
		t.Fatalf("strict on nfs: got %v, want a *RefusalError", err)
	}
	for _, want := range []string{dir, "nfs (network)", EnvRequireLocal, "LOKT_ROOT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not mention %q", err, want)
		}
	}

	Simulate("ext4", KindLocal)
	if err := CheckRequireLocal(strict, dir); err != nil {
		t.Fatalf("strict on ext4: %v", err)
	}

	SetDetectorForTesting(func(string) (Info, error) { return Info{}, errors.New("statfs: boom") })
	if err := CheckRequireLocal(strict, dir); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("strict with an unreadable type: got %v, want the error", err)
	}

	restore()
	if err := CheckRequireLocal(strict, dir); err != nil {
		t.Fatalf("after restore, the real (local) filesystem: %v", err)
	}
}
