// Package rootdir chooses the lock root: the directory that holds a
// namespace of locks, shared by every process that should coordinate.
package rootdir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Source says which rule chose the lock root.
type Source string

// The rules, in order of precedence.
const (
	SourceEnv    Source = "env"     // $LOKT_ROOT
	SourceGit    Source = "git"     // <git common dir>/lokt
	SourceWalkUp Source = "walk-up" // nearest existing .lokt/ at or above cwd
	SourceUser   Source = "user"    // the per-user, machine-wide root (created on first use by the caller, not by Find)
)

// Result is the chosen lock root and why it was chosen.
type Result struct {
	Dir    string // absolute, cleaned path of the lock root
	Source Source
	Reason string // one human sentence: why this root
}

// EnvRoot is the environment variable that overrides discovery.
const EnvRoot = "LOKT_ROOT"

// gitLockDir is the lock root's name inside git's common directory.
const gitLockDir = "lokt"

// dotLokt is the lock root's name outside git.
const dotLokt = ".lokt"

// Find chooses the lock root for a process whose working directory is cwd:
// $LOKT_ROOT (absolute only), else lokt/ in the git common directory, else
// the nearest .lokt directory at or above cwd, else the per-user root. It
// never answers "the current directory": two jobs started in two places
// must meet in one root. A .lokt symlink met on the way up is an error, not
// skipped. getenv is os.Getenv in production (nil means os.Getenv); HOME,
// XDG_STATE_HOME and LocalAppData are read through it. It never creates
// anything.
//
// cwd is resolved to its physical path first, as git and the kernel do, so
// the same directory reached through different symlinks gives one root.
// GIT_DIR and the other GIT_* variables are deliberately ignored: lokt must
// give the same answer however a tool was launched, and git sets GIT_DIR in
// hooks and aliases.
func Find(cwd string, getenv func(string) string) (Result, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(EnvRoot); v != "" {
		dir, err := checkEnvRoot(v, cwd, getenv)
		if err != nil {
			return Result{}, err
		}
		return Result{
			Dir:    dir,
			Source: SourceEnv,
			Reason: fmt.Sprintf("$%s is set to %q", EnvRoot, v),
		}, nil
	}

	phys, err := physical(cwd)
	if err != nil {
		return Result{}, err
	}

	g, ok, err := findGit(phys)
	if err != nil {
		return Result{}, err
	}
	if ok {
		return Result{
			Dir:    filepath.Join(g.common, gitLockDir),
			Source: SourceGit,
			Reason: g.reason(),
		}, nil
	}

	for d := phys; ; d = filepath.Dir(d) {
		p := filepath.Join(d, dotLokt)
		fi, err := os.Lstat(p)
		switch {
		case err == nil && fi.IsDir():
			return Result{
				Dir:    p,
				Source: SourceWalkUp,
				Reason: fmt.Sprintf("not in a git repository; %s is the nearest existing .lokt directory at or above %s", p, phys),
			}, nil
		case err == nil && fi.Mode()&fs.ModeSymlink != 0:
			// Passing over it would let every directory below choose a
			// root of its own; following it would give one directory two
			// names, and every file operation stays inside the root
			// without following links. So neither: the user decides.
			return Result{}, symlinkError(p)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			// Guessing past an unreadable level could split one namespace
			// in two, so refuse.
			return Result{}, fmt.Errorf("rootdir: %w", err)
		}
		// A regular file named .lokt is not a root and is passed over.
		if filepath.Dir(d) == d {
			break
		}
	}

	dir, err := userRoot(getenv)
	if err != nil {
		return Result{}, err
	}
	return Result{
		Dir:    dir,
		Source: SourceUser,
		Reason: fmt.Sprintf("not in a git repository and no .lokt directory at or above %s, so this user's machine-wide root", phys),
	}, nil
}

// checkEnvRoot accepts $LOKT_ROOT only as an absolute path. A relative one
// names a different directory for every job that starts elsewhere, and a
// leading "~" is expanded by interactive shells but not by cron, systemd
// or exec, so both would silently split one namespace.
func checkEnvRoot(v, cwd string, getenv func(string) string) (string, error) {
	if strings.HasPrefix(v, "~") {
		fix := "an absolute path"
		if home := getenv("HOME"); filepath.IsAbs(home) && (v == "~" || strings.HasPrefix(v, "~/")) {
			fix = fmt.Sprintf("%s=%s", EnvRoot, filepath.Join(home, strings.TrimPrefix(v, "~")))
		}
		return "", fmt.Errorf("$%s is %q: lokt does not expand \"~\" (neither does cron: it would name a directory called \"~\"); use %s", EnvRoot, v, fix)
	}
	if !filepath.IsAbs(v) {
		example := "$PWD/" + v
		if phys, err := physical(cwd); err == nil {
			example = filepath.Join(phys, v)
		}
		return "", fmt.Errorf("$%s is %q, a relative path, which names another directory for every job started elsewhere; use an absolute path, e.g. %s=%s", EnvRoot, v, EnvRoot, example)
	}
	return filepath.Clean(v), nil
}

// symlinkError explains a .lokt symlink found by discovery.
func symlinkError(link string) error {
	target, err := os.Readlink(link)
	if err != nil {
		target = "its target"
	} else if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(link), target)
	}
	return fmt.Errorf("%s is a symlink; lokt does not follow a .lokt link, and will not choose a root below it either\n"+
		"  either make it a real directory (rm %s && mkdir %s),\n"+
		"  or point every process at the shared root explicitly: export %s=%s", link, link, link, EnvRoot, target)
}

// userRoot is the per-user, machine-wide root: every process of one user
// outside git and outside any .lokt tree shares it, wherever it starts.
// The location is the platform's per-user state directory (userstate_*.go).
func userRoot(getenv func(string) string) (string, error) {
	base, err := userStateDir(getenv)
	if err != nil {
		return "", fmt.Errorf("rootdir: no .lokt directory and no git repository here, and %w; set %s to an absolute path", err, EnvRoot)
	}
	return filepath.Join(base, "lokt"), nil
}

// physical returns the absolute, symlink-free form of dir.
func physical(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("rootdir: working directory %q: %w", dir, err)
	}
	p, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("rootdir: working directory: %w", err)
	}
	return p, nil
}

// GitCommonDir finds git's common directory for dir by reading files only,
// as `git rev-parse --git-common-dir` would from dir. ok is false when dir
// is not inside a git repository. The result is absolute and free of
// symlinks.
func GitCommonDir(dir string) (common string, ok bool, err error) {
	phys, err := physical(dir)
	if err != nil {
		return "", false, err
	}
	g, ok, err := findGit(phys)
	return g.common, ok, err
}

// gitRepo describes where discovery found a repository.
type gitRepo struct {
	top     string // work tree top, or the git dir itself when bare
	gitFile string // the .git file followed, if any (linked worktree, submodule)
	common  string // resolved common directory
	bare    bool   // dir was inside a git directory, not a work tree
}

func (g gitRepo) reason() string {
	switch {
	case g.bare:
		return fmt.Sprintf("inside git directory %s, so its git common directory %s", g.top, g.common)
	case g.gitFile != "":
		return fmt.Sprintf("git common directory %s of the work tree %s (linked by %s)", g.common, g.top, g.gitFile)
	default:
		return fmt.Sprintf("git common directory %s of the work tree %s", g.common, g.top)
	}
}

// findGit walks up from the physical directory start the way git's
// discovery does: at each level a .git directory or .git file marks a work
// tree; otherwise a level that is itself a git directory (a bare repository,
// or somewhere inside a .git directory) is used as such, because hooks run
// there and must share the repository's namespace, and git answers the same.
// A .git directory that is not a valid git directory is passed over, as git
// does; a .git file that cannot be followed is an error, as in git.
func findGit(start string) (gitRepo, bool, error) {
	for d := start; ; d = filepath.Dir(d) {
		dotgit := filepath.Join(d, ".git")
		fi, err := os.Stat(dotgit)
		switch {
		case err == nil && fi.Mode().IsRegular():
			gitdir, err := readGitFile(dotgit)
			if err != nil {
				return gitRepo{}, false, err
			}
			if !isGitDir(gitdir) {
				return gitRepo{}, false, fmt.Errorf("rootdir: %s points to %s, which is not a git directory", dotgit, gitdir)
			}
			return finish(gitRepo{top: d, gitFile: dotgit}, gitdir)
		case err == nil && fi.IsDir() && isGitDir(dotgit):
			return finish(gitRepo{top: d}, dotgit)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return gitRepo{}, false, fmt.Errorf("rootdir: %w", err)
		}
		if isGitDir(d) {
			return finish(gitRepo{top: d, bare: true}, d)
		}
		if filepath.Dir(d) == d {
			return gitRepo{}, false, nil
		}
	}
}

// finish resolves the common directory of gitdir into g.
func finish(g gitRepo, gitdir string) (gitRepo, bool, error) {
	common, err := commonDir(gitdir)
	if err != nil {
		return gitRepo{}, false, err
	}
	resolved, err := filepath.EvalSymlinks(common)
	if err != nil {
		return gitRepo{}, false, fmt.Errorf("rootdir: git common directory: %w", err)
	}
	g.common = resolved
	return g, true, nil
}

// commonDir returns gitdir's common directory: the target of its commondir
// file (linked worktrees), else gitdir itself.
func commonDir(gitdir string) (string, error) {
	p := filepath.Join(gitdir, "commondir")
	b, err := readSmall(p)
	if errors.Is(err, fs.ErrNotExist) {
		return gitdir, nil
	}
	if err != nil {
		return "", err
	}
	c := strings.TrimRight(string(b), "\r\n")
	if c == "" {
		return "", fmt.Errorf("rootdir: %s is empty", p)
	}
	if !filepath.IsAbs(c) {
		c = filepath.Join(gitdir, c)
	}
	return filepath.Clean(c), nil
}

// isGitDir mirrors git's test for a git directory: a HEAD, and objects/
// and refs/ in its common directory. It keeps a stray HEAD file from
// making an ordinary directory look like a repository.
func isGitDir(dir string) bool {
	if fi, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil || fi.IsDir() {
		return false
	}
	common, err := commonDir(dir)
	if err != nil {
		return false
	}
	for _, sub := range []string{"objects", "refs"} {
		if fi, err := os.Stat(filepath.Join(common, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// readGitFile returns the absolute git directory named by the .git file at
// path.
func readGitFile(path string) (string, error) {
	b, err := readSmall(path)
	if err != nil {
		return "", err
	}
	gitdir, err := parseGitFile(b)
	if err != nil {
		return "", fmt.Errorf("rootdir: %s: %w", path, err)
	}
	if !filepath.IsAbs(gitdir) {
		// Relative to the directory holding the .git file, as in git.
		gitdir = filepath.Join(filepath.Dir(path), gitdir)
	}
	return filepath.Clean(gitdir), nil
}

// parseGitFile parses the contents of a .git file: "gitdir: <path>" with
// trailing newlines, exactly as git accepts it.
func parseGitFile(b []byte) (string, error) {
	s, ok := strings.CutPrefix(string(b), "gitdir: ")
	if !ok {
		return "", errors.New(`invalid .git file: want "gitdir: <path>"`)
	}
	s = strings.TrimRight(s, "\r\n")
	if s == "" {
		return "", errors.New("invalid .git file: empty gitdir path")
	}
	if strings.ContainsAny(s, "\x00\r\n") {
		return "", errors.New("invalid .git file: gitdir path spans lines")
	}
	return s, nil
}

// maxSmallFile bounds reads of git's pointer files, which hold one path.
const maxSmallFile = 64 << 10

// readSmall reads a pointer file, refusing ones too large to be real.
func readSmall(path string) (b []byte, err error) {
	f, err := os.Open(path) // #nosec G304 -- reading git's own pointer files is the purpose
	if err != nil {
		return nil, fmt.Errorf("rootdir: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("rootdir: %w", cerr)
		}
	}()
	b, err = io.ReadAll(io.LimitReader(f, maxSmallFile+1))
	if err != nil {
		return nil, fmt.Errorf("rootdir: %s: %w", path, err)
	}
	if len(b) > maxSmallFile {
		return nil, fmt.Errorf("rootdir: %s: larger than %d bytes", path, maxSmallFile)
	}
	return b, nil
}
