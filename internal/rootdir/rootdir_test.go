package rootdir

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// gitEnv is the environment for git subprocesses: no inherited GIT_*
// variables and no user or system config, so the host cannot steer them.
func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	full := append([]string{
		"-c", "user.name=lokt test", "-c", "user.email=test@lokt.invalid",
		"-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always",
	}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

func mkdir(t *testing.T, parts ...string) string {
	t.Helper()
	p := filepath.Join(parts...)
	if err := os.MkdirAll(p, 0o750); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func evalSymlinks(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tempDir returns a physical temp dir, skipping the test if one of its
// ancestors would be found by discovery and so change every expectation.
func tempDir(t *testing.T) string {
	t.Helper()
	dir := evalSymlinks(t, t.TempDir())
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		for _, name := range []string{".git", ".lokt", "HEAD"} {
			if _, err := os.Lstat(filepath.Join(d, name)); err == nil {
				t.Skipf("%s has %s; discovery from the temp dir is not isolated", d, name)
			}
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func noEnv(string) string { return "" }

func TestFindEnv(t *testing.T) {
	base := tempDir(t)
	cwd := mkdir(t, base, "a", "b")
	tests := []struct {
		name, cwd, root, want string
	}{
		{"absolute", cwd, "/srv/locks/../lk", "/srv/lk"},
		{"absolute ignores missing cwd", filepath.Join(base, "missing"), "/srv/lk/", "/srv/lk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Find(tt.cwd, envMap(map[string]string{"LOKT_ROOT": tt.root}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Dir != tt.want || res.Source != SourceEnv || !strings.Contains(res.Reason, "LOKT_ROOT") {
				t.Errorf("Find = %+v, want Dir %s from env", res, tt.want)
			}
		})
	}
}

// TestFindEnvRefused: a relative or "~" LOKT_ROOT names a different
// directory depending on where and how a job starts, so it is refused with
// the absolute path to use instead.
func TestFindEnvRefused(t *testing.T) {
	base := tempDir(t)
	cwd := mkdir(t, base, "a")
	tests := []struct {
		name, root, home string
		want             []string
	}{
		{"relative", "locks", "/home/u", []string{`"locks", a relative path`, "LOKT_ROOT=" + filepath.Join(cwd, "locks")}},
		{"dot", "./locks", "/home/u", []string{"relative path", "LOKT_ROOT=" + filepath.Join(cwd, "locks")}},
		{"tilde slash", "~/locks", "/home/u", []string{`does not expand "~"`, "use LOKT_ROOT=/home/u/locks"}},
		{"tilde alone", "~", "/home/u", []string{"use LOKT_ROOT=/home/u"}},
		{"tilde user", "~bob/locks", "/home/u", []string{`does not expand "~"`, "use an absolute path"}},
		{"tilde without HOME", "~/locks", "", []string{"use an absolute path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Find(cwd, envMap(map[string]string{"LOKT_ROOT": tt.root, "HOME": tt.home}))
			if err == nil {
				t.Fatalf("Find with LOKT_ROOT=%q = %+v, want an error", tt.root, res)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(cwd, "~")); err == nil {
		t.Error("Find created ~")
	}
}

func TestFindEnvDefaultGetenv(t *testing.T) {
	base := tempDir(t)
	t.Setenv("LOKT_ROOT", filepath.Join(base, "x"))
	res, err := Find(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != filepath.Join(base, "x") || res.Source != SourceEnv {
		t.Errorf("Find with nil getenv = %+v", res)
	}
}

// TestFindGit builds a repository with a linked worktree, a submodule and a
// bare clone, and checks that Find and GitCommonDir agree with git itself
// from each place.
func TestFindGit(t *testing.T) {
	base := tempDir(t)
	repo := mkdir(t, base, "repo")
	git(t, repo, "init", "-q")
	deep := mkdir(t, repo, "a", "b", "c")
	// A nearer .lokt must not beat the repository.
	mkdir(t, repo, "a", ".lokt")
	writeFile(t, filepath.Join(deep, "f"), "x")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "init")

	lib := mkdir(t, base, "lib")
	git(t, lib, "init", "-q")
	writeFile(t, filepath.Join(lib, "g"), "y")
	git(t, lib, "add", ".")
	git(t, lib, "commit", "-q", "-m", "lib")
	git(t, repo, "submodule", "add", "-q", lib, "sub")
	git(t, repo, "commit", "-q", "-m", "sub")
	subDeep := mkdir(t, repo, "sub", "x", "y")

	wt := filepath.Join(base, "wt")
	git(t, repo, "worktree", "add", "-q", "-b", "wtb", wt)

	bare := filepath.Join(base, "bare.git")
	git(t, base, "clone", "-q", "--bare", repo, bare)

	link := filepath.Join(base, "link")
	if err := os.Symlink(deep, link); err != nil {
		t.Fatal(err)
	}

	mainCommon := evalSymlinks(t, filepath.Join(repo, ".git"))
	tests := []struct {
		name, cwd string
		want      string // expected common dir ("" = ask git only)
	}{
		{"repo root", repo, mainCommon},
		{"deep subdirectory", deep, mainCommon},
		{"symlink into repo", link, mainCommon},
		{"linked worktree", wt, mainCommon},
		{"linked worktree subdirectory", filepath.Join(wt, "a", "b"), mainCommon},
		{"inside .git", filepath.Join(repo, ".git", "objects"), mainCommon},
		{"inside worktree git dir", filepath.Join(repo, ".git", "worktrees", "wt"), mainCommon},
		{"submodule", filepath.Join(repo, "sub"), evalSymlinks(t, filepath.Join(repo, ".git", "modules", "sub"))},
		{"submodule subdirectory", subDeep, evalSymlinks(t, filepath.Join(repo, ".git", "modules", "sub"))},
		{"bare repository", bare, bare},
		{"inside bare repository", filepath.Join(bare, "refs", "heads"), bare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fromGit := evalSymlinks(t, git(t, tt.cwd, "rev-parse", "--path-format=absolute", "--git-common-dir"))
			if fromGit != tt.want {
				t.Fatalf("test setup: git says %s, test expects %s", fromGit, tt.want)
			}
			common, ok, err := GitCommonDir(tt.cwd)
			if err != nil || !ok || common != fromGit {
				t.Errorf("GitCommonDir(%s) = %q, %v, %v; git says %s", tt.cwd, common, ok, err, fromGit)
			}
			res, err := Find(tt.cwd, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(fromGit, "lokt"); res.Dir != want || res.Source != SourceGit {
				t.Errorf("Find(%s) = %+v, want %s from git", tt.cwd, res, want)
			}
			if !strings.Contains(res.Reason, fromGit) {
				t.Errorf("reason %q does not name %s", res.Reason, fromGit)
			}
		})
	}
}

func TestFindIgnoresGitEnv(t *testing.T) {
	base := tempDir(t)
	repo := mkdir(t, base, "repo")
	git(t, repo, "init", "-q")
	plain := mkdir(t, base, "plain")
	t.Setenv("GIT_DIR", filepath.Join(repo, ".git"))
	t.Setenv("GIT_WORK_TREE", repo)
	t.Setenv("LOKT_ROOT", "")
	res, err := Find(plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != SourceUser {
		t.Errorf("Find with GIT_DIR set = %+v, want the per-user root", res)
	}
}

func TestFindNonGit(t *testing.T) {
	base := tempDir(t)

	// .lokt two levels up.
	up := mkdir(t, base, "up")
	mkdir(t, up, ".lokt")
	upCwd := mkdir(t, up, "a", "b")

	// A regular file named .lokt is passed over.
	skip := mkdir(t, base, "skip")
	mkdir(t, skip, ".lokt")
	writeFile(t, filepath.Join(mkdir(t, skip, "f"), ".lokt"), "not a dir")
	skipCwd := mkdir(t, skip, "f", "z")

	// .lokt in cwd itself.
	here := mkdir(t, base, "here")
	mkdir(t, here, ".lokt")

	// A .git directory that is not a repository is passed over, as by git.
	fake := mkdir(t, base, "fake")
	mkdir(t, fake, ".git")

	none := mkdir(t, base, "none", "x")
	state := filepath.Join(base, "home", ".local", "state", "lokt")
	env := envMap(map[string]string{"HOME": filepath.Join(base, "home")})

	tests := []struct {
		name, cwd, want string
		src             Source
	}{
		{"two levels up", upCwd, filepath.Join(up, ".lokt"), SourceWalkUp},
		{"file skipped", skipCwd, filepath.Join(skip, ".lokt"), SourceWalkUp},
		{"in cwd", here, filepath.Join(here, ".lokt"), SourceWalkUp},
		{"invalid .git dir", fake, state, SourceUser},
		{"nothing found", none, state, SourceUser},
		{"nothing found, elsewhere", base, state, SourceUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Find(tt.cwd, env)
			if err != nil {
				t.Fatal(err)
			}
			if res.Dir != tt.want || res.Source != tt.src || res.Reason == "" {
				t.Errorf("Find(%s) = %+v, want %s from %s", tt.cwd, res, tt.want, tt.src)
			}
			if _, ok, err := GitCommonDir(tt.cwd); ok || err != nil {
				t.Errorf("GitCommonDir(%s) = ok %v, err %v; want not a repository", tt.cwd, ok, err)
			}
		})
	}
	for _, p := range []string{filepath.Join(none, ".lokt"), state} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("Find created %s", p)
		}
	}
}

// TestFindDotLoktSymlink: a .lokt symlink is neither followed nor passed
// over (which let two subdirectories each make a .lokt of their own), but
// refused, naming the link and both fixes.
func TestFindDotLoktSymlink(t *testing.T) {
	base := tempDir(t)
	target := mkdir(t, base, "target")
	proj := mkdir(t, base, "proj")
	link := filepath.Join(proj, ".lokt")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	// Dangling links are refused too: they would be created through.
	dangling := mkdir(t, base, "dangling")
	if err := os.Symlink("gone", filepath.Join(dangling, ".lokt")); err != nil {
		t.Fatal(err)
	}
	env := envMap(map[string]string{"HOME": filepath.Join(base, "home")})
	for _, tt := range []struct{ cwd, link, target string }{
		{proj, link, target},
		{mkdir(t, proj, "sub1"), link, target},
		{mkdir(t, proj, "sub2", "deeper"), link, target},
		{dangling, filepath.Join(dangling, ".lokt"), filepath.Join(dangling, "gone")},
	} {
		res, err := Find(tt.cwd, env)
		if err == nil {
			t.Fatalf("Find(%s) = %+v, want an error about the .lokt symlink", tt.cwd, res)
		}
		for _, w := range []string{tt.link + " is a symlink", "rm " + tt.link + " && mkdir " + tt.link, "LOKT_ROOT=" + tt.target} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Find(%s) error %q does not contain %q", tt.cwd, err, w)
			}
		}
	}
	for _, sub := range []string{"sub1", "sub2", filepath.Join("sub2", "deeper")} {
		if _, err := os.Lstat(filepath.Join(proj, sub, ".lokt")); err == nil {
			t.Errorf("a second root was created in %s", sub)
		}
	}
}

// TestUserStateDir covers the XDG rules on Linux and the BSDs.
func TestUserStateDir(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		t.Skip("XDG rules apply on Linux and the BSDs")
	}
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/home/u"}, "/home/u/.local/state/lokt"},
		{map[string]string{"HOME": "/home/u", "XDG_STATE_HOME": "/var/st/"}, "/var/st/lokt"},
		// The spec: a relative XDG_STATE_HOME is invalid and ignored.
		{map[string]string{"HOME": "/home/u", "XDG_STATE_HOME": "st"}, "/home/u/.local/state/lokt"},
	}
	for _, tt := range tests {
		got, err := userRoot(envMap(tt.env))
		if err != nil || got != tt.want {
			t.Errorf("userRoot(%v) = %q, %v; want %s", tt.env, got, err, tt.want)
		}
	}
	_, err := userRoot(envMap(map[string]string{"HOME": "rel"}))
	if err == nil || !strings.Contains(err.Error(), "LOKT_ROOT") {
		t.Errorf("userRoot without an absolute HOME: %v, want an error naming LOKT_ROOT", err)
	}
}

func TestFindGitErrors(t *testing.T) {
	base := tempDir(t)
	gitDir := func(parts ...string) string {
		d := mkdir(t, parts...)
		mkdir(t, d, "objects")
		mkdir(t, d, "refs")
		writeFile(t, filepath.Join(d, "HEAD"), "ref: refs/heads/main\n")
		return d
	}

	garbage := mkdir(t, base, "garbage")
	writeFile(t, filepath.Join(garbage, ".git"), "this is not a gitfile\n")

	dangling := mkdir(t, base, "dangling")
	writeFile(t, filepath.Join(dangling, ".git"), "gitdir: ../nowhere\n")

	big := mkdir(t, base, "big")
	writeFile(t, filepath.Join(big, ".git"), "gitdir: "+strings.Repeat("x", maxSmallFile)+"\n")

	// Hand-made .git files: absolute gitdir; relative gitdir with a
	// relative commondir.
	absGitdir := mkdir(t, base, "absgitdir")
	gd := gitDir(base, "gd1")
	writeFile(t, filepath.Join(absGitdir, ".git"), "gitdir: "+gd+"\n")
	relGitdir := mkdir(t, base, "relgitdir")
	gd2 := mkdir(t, base, "gd2")
	writeFile(t, filepath.Join(gd2, "HEAD"), "0123456789abcdef0123456789abcdef01234567\n")
	gitDir(base, "real")
	writeFile(t, filepath.Join(gd2, "commondir"), "../real\n")
	writeFile(t, filepath.Join(relGitdir, ".git"), "gitdir: ../gd2\n")

	tests := []struct {
		name, cwd, mention string
	}{
		{"garbage .git file", garbage, filepath.Join(garbage, ".git")},
		{"dangling gitdir", dangling, filepath.Join(dangling, ".git")},
		{"oversized .git file", big, filepath.Join(big, ".git")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Find(tt.cwd, noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("Find(%s) error = %v, want one naming %s", tt.cwd, err, tt.mention)
			}
			if _, ok, err := GitCommonDir(tt.cwd); err == nil || ok {
				t.Errorf("GitCommonDir(%s) = ok %v, err %v; want error", tt.cwd, ok, err)
			}
		})
	}

	// A relative gitdir resolves against the .git file's directory, and a
	// relative commondir against the gitdir.
	if res, err := Find(relGitdir, noEnv); err != nil || res.Dir != filepath.Join(base, "real", "lokt") || !strings.Contains(res.Reason, "linked by") {
		t.Errorf("Find(relative gitdir + commondir) = %+v, %v", res, err)
	}
	if res, err := Find(absGitdir, noEnv); err != nil || res.Dir != filepath.Join(gd, "lokt") {
		t.Errorf("Find(absolute gitdir) = %+v, %v", res, err)
	}

	// An empty commondir makes the target no git dir: an error naming it.
	writeFile(t, filepath.Join(gd, "commondir"), "\n")
	if _, err := Find(absGitdir, noEnv); err == nil || !strings.Contains(err.Error(), gd) {
		t.Errorf("Find with empty commondir: error = %v, want one naming %s", err, gd)
	}
	if _, err := commonDir(gd); err == nil || !strings.Contains(err.Error(), "commondir") {
		t.Errorf("commonDir(empty commondir) error = %v", err)
	}
	if _, _, err := GitCommonDir(filepath.Join(base, "missing")); err == nil {
		t.Error("GitCommonDir(missing dir): want error")
	}
	if _, err := Find(filepath.Join(base, "missing"), noEnv); err == nil {
		t.Error("Find(missing cwd): want error")
	}
}

func TestParseGitFile(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "gitdir: /abs/path\n", want: "/abs/path"},
		{in: "gitdir: ../rel/path", want: "../rel/path"},
		{in: "gitdir: with space \r\n", want: "with space "},
		{in: "gitdir: a\n\n", want: "a"},
		{in: "", wantErr: true},
		{in: "gitdir:/no/space\n", wantErr: true},
		{in: "GITDIR: /x\n", wantErr: true},
		{in: " gitdir: /x\n", wantErr: true},
		{in: "gitdir: \n", wantErr: true},
		{in: "gitdir: a\nb\n", wantErr: true},
		{in: "gitdir: a\x00b", wantErr: true},
		{in: "\x7fELF garbage", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseGitFile([]byte(tt.in))
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseGitFile(%q) = %q, want error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseGitFile(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
