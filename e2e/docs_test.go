package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lokt-dev/lokt/internal/testbin"
)

// A fenced shell block right after a "<!-- runnable -->" line in the README
// or docs/*.md is run against the built binary, so the docs cannot rot.
// Each line is one command (a trailing backslash continues it); it must exit
// 0 unless it ends with "# exit N". Blocks of one file share a lock root and
// run in order, so a later block can rely on an earlier one.
const runnableMarker = "<!-- runnable -->"

type docBlock struct {
	file  string
	line  int
	lines []docLine
}

type docLine struct {
	line int
	cmd  string
	want int
}

var wantExit = regexp.MustCompile(`\s+# exit (\d+)\s*$`)

func parseDocBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var blocks []docBlock
	var cur *docBlock
	marked, inFence := false, false
	var pending string
	pendingLine := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		switch {
		case !inFence && trimmed == runnableMarker:
			marked = true
		case !inFence && strings.HasPrefix(trimmed, "```"):
			inFence = true
			if marked {
				blocks = append(blocks, docBlock{file: filepath.Base(path), line: n})
				cur = &blocks[len(blocks)-1]
			}
			marked = false
		case inFence && trimmed == "```":
			inFence, cur = false, nil
		case cur != nil:
			if pending == "" {
				pendingLine = n
			}
			if strings.HasSuffix(text, "\\") {
				pending += strings.TrimSuffix(text, "\\") + " "
				continue
			}
			cmd := pending + text
			pending = ""
			if strings.TrimSpace(cmd) == "" || strings.HasPrefix(strings.TrimSpace(cmd), "#") {
				continue
			}
			want := 0
			if m := wantExit.FindStringSubmatch(cmd); m != nil {
				_, _ = fmt.Sscan(m[1], &want)
				cmd = cmd[:len(cmd)-len(m[0])]
			}
			cur.lines = append(cur.lines, docLine{line: pendingLine, cmd: cmd, want: want})
		case trimmed != "":
			marked = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

func TestDocsExamples(t *testing.T) {
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"../README.md"}, files...)
	bin := testbin.Path(t)
	binDir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(binDir, "lokt")); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, file := range files {
		blocks := parseDocBlocks(t, file)
		if len(blocks) == 0 {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			work := t.TempDir()
			root := filepath.Join(work, "root")
			for _, b := range blocks {
				total += len(b.lines)
				// One shell per block, as a reader would type it: that shell
				// is the holder of the locks its lines take.
				var script strings.Builder
				for _, l := range b.lines {
					fmt.Fprintf(&script, "%s\nrc=$?; if [ $rc -ne %d ]; then echo \"%s:%d: exited $rc, want %d\" >&2; exit 97; fi\n", l.cmd, l.want, b.file, l.line, l.want)
				}
				cmd := exec.Command("bash", "-c", script.String())
				cmd.Dir = work
				cmd.Env = append(env(root), "PATH="+binDir+":"+os.Getenv("PATH"))
				if r := wait(t, cmd); r.code != 0 {
					t.Errorf("%s:%d: runnable block failed (exit %d)\nstdout:\n%s\nstderr:\n%s", b.file, b.line, r.code, r.stdout, r.stderr)
				}
			}
		})
	}
	if total == 0 {
		t.Fatal("no runnable examples found in README.md or docs/*.md")
	}
}
