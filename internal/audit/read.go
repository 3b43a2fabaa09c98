package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/lokt-dev/lokt/internal/atomicfs"
)

// Stats counts what a reader saw.
type Stats struct {
	// Records is the number of valid records read (before any filter).
	Records int
	// Bad is the number of lines skipped: torn by a failed write, not JSON,
	// not a record, or longer than any record could be.
	Bad int
}

// Handler receives each record with its line as it is in the file (without
// the newline). raw is only valid during the call.
type Handler func(raw []byte, rec *Record) error

// Scan reads every record of the audit log in dir, oldest first: the rotated
// generations from the highest number down, then audit.log. It streams: no
// more than one line is held in memory. A missing log is no error (zero
// Stats). Unreadable lines are skipped and counted. fn's error stops Scan
// and is returned.
func Scan(dir string, fn Handler) (Stats, error) {
	var st Stats
	d, err := openRoot(dir)
	if d == nil || err != nil {
		return st, err
	}
	defer func() { _ = d.Close() }()
	files, err := snapshot(d)
	if err != nil {
		return st, err
	}
	defer closeAll(files)
	for _, f := range files {
		lr := newLineReader(f)
		err := lr.each(&st, fn)
		if err == nil {
			err = lr.finish(&st, fn)
		}
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// Files returns the audit log's files in dir, oldest first (rotated
// generations, then audit.log), that exist now.
func Files(dir string) ([]string, error) {
	d, err := openRoot(dir)
	if d == nil || err != nil {
		return nil, err
	}
	defer func() { _ = d.Close() }()
	names, err := generations(d)
	if err != nil {
		return nil, err
	}
	if _, err := d.Type(FileName); err == nil {
		names = append(names, FileName)
	}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(d.Path(), n)
	}
	return paths, nil
}

// openRoot opens the lock root for reading its log; nil, without error, if
// it does not exist (then neither does a log).
func openRoot(dir string) (*atomicfs.Dir, error) {
	d, err := atomicfs.OpenDir(dir, false, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return d, err
}

// generations lists the names of the audit.log.N files, oldest (highest N)
// first.
func generations(d *atomicfs.Dir) ([]string, error) {
	entries, err := d.ReadDirNames()
	if err != nil {
		return nil, err
	}
	var gens []string
	for _, e := range entries {
		if genNumber(e) > 0 {
			gens = append(gens, e)
		}
	}
	sort.Slice(gens, func(i, j int) bool { return genNumber(gens[i]) > genNumber(gens[j]) })
	return gens, nil
}

// genNumber is N for a file named audit.log.N (N written without leading
// zeros), 0 for anything else.
func genNumber(path string) int {
	suffix, ok := strings.CutPrefix(filepath.Base(path), FileName+".")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(suffix)
	if err != nil || n < 1 || strconv.Itoa(n) != suffix {
		return 0
	}
	return n
}

// maxSnapshotTries bounds retries when rotations keep racing a snapshot.
const maxSnapshotTries = 100

// snapshot opens every file of the log, oldest first, as one consistent
// set: the current audit.log is share-locked while the generations are
// opened, which holds rotation off (a rotator needs the exclusive lock), and
// every path is checked afterwards to still name the file opened for it.
// Once open, the descriptors are immune to later renames. The last element
// is audit.log when it exists.
func snapshot(d *atomicfs.Dir) ([]*os.File, error) {
	for range maxSnapshotTries {
		files, ok, err := trySnapshot(d)
		if err != nil || ok {
			return files, err
		}
	}
	return nil, fmt.Errorf("%s is being rotated too fast to read", filepath.Join(d.Path(), FileName))
}

func trySnapshot(d *atomicfs.Dir) ([]*os.File, bool, error) {
	cur, err := openRead(d, FileName)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cur = nil
	case err != nil:
		return nil, false, err
	default:
		if err := lockSharedWait(cur); err != nil {
			_ = cur.Close()
			return nil, false, err
		}
	}
	files, ok, err := openGenerations(d, cur)
	if cur != nil {
		_ = unlock(cur)
		files = append(files, cur)
	}
	if err != nil || !ok {
		closeAll(files)
		return nil, false, err
	}
	return files, true, nil
}

// openGenerations opens the rotated files while cur (audit.log, or nil if
// there is none) is share-locked, and checks that the set is consistent.
func openGenerations(d *atomicfs.Dir, cur *os.File) (files []*os.File, ok bool, err error) {
	if cur != nil {
		if same, err := d.Holds(FileName, cur); err != nil || !same {
			return nil, false, err
		}
	}
	gens, err := generations(d)
	if err != nil {
		return nil, false, err
	}
	for _, g := range gens {
		f, err := openRead(d, g)
		if errors.Is(err, fs.ErrNotExist) {
			return files, false, nil // moved on since the listing: retry
		}
		if err != nil {
			return files, false, err
		}
		files = append(files, f)
	}
	// Without a current file nothing held rotation off; with one, a user
	// could still have moved a generation. Either way the listing must be
	// unchanged (a directory listing is not atomic, and a rotation between
	// the listing and the opens would hide a file), every path must still
	// name what was opened for it, and no audit.log may have appeared.
	again, err := generations(d)
	if err != nil || !slices.Equal(again, gens) {
		return files, false, err
	}
	for i, g := range gens {
		if same, err := d.Holds(g, files[i]); err != nil || !same {
			return files, false, err
		}
	}
	if cur == nil {
		if _, err := d.Type(FileName); !errors.Is(err, fs.ErrNotExist) {
			return files, false, nil
		}
	}
	return files, true, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			_ = f.Close()
		}
	}
}

// Parse decodes one log line. A line that is not a record, but ends with one
// glued to the remains of a torn write (the torn writer's line never got its
// newline), yields that record and reports the torn part: recovered is true
// and raw is the record's part of the line.
func Parse(line []byte) (raw []byte, rec Record, recovered bool, err error) {
	err = decodeRecord(line, &rec)
	if err == nil {
		return line, rec, false, nil
	}
	if i := bytes.LastIndex(line, recordStart); i > 0 && decodeRecord(line[i:], &rec) == nil {
		return line[i:], rec, true, nil
	}
	return nil, Record{}, false, err
}

// recordStart is how every line this package writes begins (ts is the
// first field of Record).
var recordStart = []byte(`{"ts":`)

func decodeRecord(line []byte, rec *Record) error {
	*rec = Record{}
	if err := json.Unmarshal(line, rec); err != nil {
		return err
	}
	if rec.Event == "" || rec.TS.IsZero() {
		return errors.New("not an audit record: no event or ts")
	}
	return nil
}

// maxLine bounds one line: records are a few hundred bytes, so anything
// longer is damage, and skipping it keeps memory bounded.
const maxLine = 1 << 20

const readChunk = 64 << 10

// lineReader splits a file that may still be growing into lines. A partial
// last line stays buffered until its newline arrives (or finish gives up on
// it).
type lineReader struct {
	r    io.Reader
	buf  []byte
	off  int
	skip bool // inside an over-long line: drop bytes up to its newline
	long int  // over-long lines dropped
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: r, buf: make([]byte, 0, readChunk)}
}

// next returns the next complete line without its newline, or io.EOF when
// none is available now. The line is only valid until the next call.
func (lr *lineReader) next() ([]byte, error) {
	for {
		if i := bytes.IndexByte(lr.buf[lr.off:], '\n'); i >= 0 {
			line := lr.buf[lr.off : lr.off+i]
			lr.off += i + 1
			if lr.skip {
				lr.skip = false
				continue
			}
			return line, nil
		}
		if lr.skip {
			lr.buf, lr.off = lr.buf[:0], 0
		} else if len(lr.buf)-lr.off > maxLine {
			lr.skip = true
			lr.long++
			lr.buf, lr.off = lr.buf[:0], 0
		}
		if lr.off > 0 {
			n := copy(lr.buf, lr.buf[lr.off:])
			lr.buf, lr.off = lr.buf[:n], 0
		}
		if cap(lr.buf)-len(lr.buf) < readChunk/2 {
			grown := make([]byte, len(lr.buf), 2*cap(lr.buf))
			copy(grown, lr.buf)
			lr.buf = grown
		}
		n, err := lr.r.Read(lr.buf[len(lr.buf):cap(lr.buf)])
		lr.buf = lr.buf[:len(lr.buf)+n]
		if n > 0 {
			continue
		}
		if err == nil {
			err = io.EOF
		}
		return nil, err
	}
}

// each hands every complete line available now to fn.
func (lr *lineReader) each(st *Stats, fn Handler) error {
	defer func() { st.Bad += lr.long; lr.long = 0 }()
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := handle(line, st, fn); err != nil {
			return err
		}
	}
}

// finish deals with a last line that never got its newline: it is a record
// if it parses (a writer cut off just before the newline) and counted as
// torn otherwise. Call it when no more data can arrive.
func (lr *lineReader) finish(st *Stats, fn Handler) error {
	rest := lr.buf[lr.off:]
	lr.buf, lr.off = lr.buf[:0], 0
	if lr.skip {
		lr.skip = false
		return nil
	}
	return handle(rest, st, fn)
}

func handle(line []byte, st *Stats, fn Handler) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	raw, rec, recovered, err := Parse(line)
	if err != nil {
		st.Bad++
		return nil
	}
	if recovered {
		st.Bad++
	}
	st.Records++
	return fn(raw, &rec)
}
