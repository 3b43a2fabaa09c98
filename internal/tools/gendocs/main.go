// Command gendocs writes lokt's shell completions and man pages, generated
// from the cobra command tree, for the release packages (.goreleaser.yaml
// runs it as a before hook). It is its own main package so that the lokt
// binary does not link the man page renderer.
//
//	go run ./internal/tools/gendocs -out build -date 2026-12-01T00:00:00Z
//
// writes build/completions/{lokt.bash,_lokt,lokt.fish} and
// build/manpages/lokt*.1.gz. The output depends only on the source and
// -date, so a rebuilt commit gives the same bytes.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/lokt-dev/lokt/internal/cli"
)

func main() {
	out := flag.String("out", "build", "directory to write completions/ and manpages/ into")
	date := flag.String("date", "", "date for the man pages, RFC 3339 (default: $SOURCE_DATE_EPOCH, else now)")
	flag.Parse()
	when, err := pageDate(*date)
	if err == nil {
		err = generate(*out, when)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func pageDate(s string) (time.Time, error) {
	if s != "" {
		return time.Parse(time.RFC3339, s)
	}
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		var sec int64
		if _, err := fmt.Sscan(e, &sec); err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", e, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Now().UTC(), nil
}

func generate(out string, when time.Time) error {
	comp := filepath.Join(out, "completions")
	man := filepath.Join(out, "manpages")
	for _, d := range []string{comp, man} {
		// Stale pages of removed commands must not ship.
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil { // #nosec G301 -- package payload, world-readable on purpose
			return err
		}
	}
	// The scripts are exactly what `lokt completion SHELL` prints, so a
	// packaged completion and a hand-installed one never differ.
	for shell, name := range map[string]string{"bash": "lokt.bash", "zsh": "_lokt", "fish": "lokt.fish"} {
		b, err := runLokt("completion", shell)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(comp, name), b, 0o644); err != nil { // #nosec G306 -- installed world-readable
			return err
		}
	}
	return manPages(man, when)
}

// runLokt runs the lokt command tree in process and returns its stdout.
func runLokt(args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	f := cli.NewFactory(&cli.IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr})
	if code := cli.Run(f, args); code != 0 {
		return nil, fmt.Errorf("lokt %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.Bytes(), nil
}

// manPages renders one gzipped page per command (lokt.1, lokt-lock.1, ...).
// gzip headers carry no name or time, for reproducible packages.
func manPages(dir string, when time.Time) error {
	root := cli.NewRootCmd(cli.NewFactory(&cli.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}))
	root.DisableAutoGenTag = true // its line carries the build date
	plain := filepath.Join(dir, ".plain")
	if err := os.MkdirAll(plain, 0o750); err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(plain) }()
	hdr := &doc.GenManHeader{Title: "LOKT", Section: "1", Date: &when, Source: "lokt", Manual: "lokt manual"}
	visitAll(root, func(c *cobra.Command) { c.DisableAutoGenTag = true })
	if err := doc.GenManTree(root, hdr, plain); err != nil {
		return err
	}
	pages, err := filepath.Glob(filepath.Join(plain, "*.1"))
	if err != nil {
		return err
	}
	for _, p := range pages {
		b, err := os.ReadFile(p) // #nosec G304 -- a page GenManTree just wrote
		if err != nil {
			return err
		}
		var z bytes.Buffer
		zw, err := gzip.NewWriterLevel(&z, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := zw.Write(b); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)+".gz"), z.Bytes(), 0o644); err != nil { // #nosec G306 -- installed world-readable
			return err
		}
	}
	if len(pages) == 0 {
		return fmt.Errorf("no man pages were generated")
	}
	return nil
}

func visitAll(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		visitAll(sub, fn)
	}
}
