package atomicfs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Guard is an open guard file holding an exclusive kernel lock (flock(2) on
// unix). The kernel drops the lock if the process dies, so a crash inside a
// critical section never wedges the name.
//
// The guard file also keeps the name's fencing counter, because unlike the
// record it outlives releases. Its format (docs/protocol.md, "Guard files"):
//
//	00000000000000002048\n                      the mark: no token above it was ever issued (synced)
//	   last 00000000000000001030 mark 00000000000000002048 boot <boot id>\n
//
// A token is handed out only after the mark covering it is durable, so the
// mark is a crash-proof upper bound, made durable once per block of tokens
// rather than once per token. The second line, written without a sync,
// says exactly which token was issued last; it is believed only during the
// boot that wrote it (a crash may have lost it) and only under the mark it
// names (an older lokt writes the first line alone, as its counter). The
// first 21 bytes are exactly the v1 format, a 20-digit counter, and the
// indent makes an older lokt, which parses the first 24 bytes as one
// number, read the mark: every token it then issues is above every token
// this one issued.
type Guard struct {
	f *os.File
	// read by Counter, used by SetCounter
	mark, last uint64
	read       bool
}

// ErrBadCounter is wrapped when a guard file holds something other than a
// counter: lokt cannot prove the next token is new, so it issues none.
var ErrBadCounter = errors.New("fencing counter unreadable")

// Block is how many tokens one durable mark covers: the counter is
// fdatasync'ed once per Block acquisitions of a name. After a crash of the
// host the next token skips the rest of the block.
const Block = 1024

const (
	markLen  = 21 // "%020d\n"
	bootLen  = 36 // a Linux boot id; others are hashed to fit
	lastLine = "   last %020d mark %020d boot %-36s\n"
	maxGuard = 255
	lastLen  = 3 + 5 + 20 + 6 + 20 + 6 + bootLen + 1
)

// LockGuard opens (creating if needed) the guard file at path and blocks
// until it holds an exclusive lock on it. Guard files are never removed:
// unlinking one would let two processes lock different inodes of one name.
// A store uses Dir.LockGuard on its open directory instead.
func LockGuard(path string, perm fs.FileMode) (g *Guard, err error) {
	err = inDir(filepath.Dir(path), func(d *Dir) error {
		g, err = d.LockGuard(filepath.Base(path), perm)
		return err
	})
	return g, err
}

// Lock blocks until this descriptor holds the exclusive lock. It must not
// run while another goroutine calls Unlock.
func (g *Guard) Lock() error {
	if err := lockExclusive(g.f); err != nil {
		return &fs.PathError{Op: "lock", Path: g.f.Name(), Err: err}
	}
	return nil
}

// Counter returns the last fencing token issued for the name (0 for a new
// guard file), or a value above it. It fails, wrapping ErrBadCounter, when
// the file holds anything it cannot prove that of.
func (g *Guard) Counter() (uint64, error) {
	buf := make([]byte, maxGuard+1)
	n, err := g.f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, &fs.PathError{Op: "read", Path: g.f.Name(), Err: err}
	}
	mark, last, err := parseCounter(buf[:n], bootID())
	if err != nil {
		return 0, g.badCounter(err.Error())
	}
	g.mark, g.last, g.read = mark, last, true
	return last, nil
}

// ParseCounter returns the last token a guard file's content proves issued
// (or a bound above it), or an error wrapping ErrBadCounter. For doctor,
// which reads guard files without locking them.
func ParseCounter(b []byte) (uint64, error) {
	_, last, err := parseCounter(b, bootID())
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadCounter, err)
	}
	return last, nil
}

// parseCounter reads a guard file: mark is the durable bound, last the
// last token issued as far as this boot can tell (mark when it cannot).
func parseCounter(b []byte, boot string) (mark, last uint64, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	if len(b) > maxGuard {
		return 0, 0, errors.New("longer than a counter")
	}
	if len(b) < markLen || b[markLen-1] != '\n' {
		// A v1 counter written by hand without the padding.
		v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%q is not a counter", clip(b))
		}
		return v, v, nil
	}
	mark, err = parseDigits(b[:markLen-1])
	if err != nil {
		return 0, 0, fmt.Errorf("first line %q is not a 20-digit counter", clip(b[:markLen-1]))
	}
	rest := b[markLen:]
	if len(bytes.TrimSpace(rest)) == 0 {
		return mark, mark, nil // v1, or v2 before any unsynced write
	}
	f := strings.Fields(string(rest))
	if len(rest) != lastLen || rest[lastLen-1] != '\n' || len(f) != 6 || f[0] != "last" || f[2] != "mark" || f[4] != "boot" {
		// Unsynced, so a crash may have torn it; the mark alone is safe.
		return mark, mark, nil
	}
	l, lerr := parseDigits([]byte(f[1]))
	m, merr := parseDigits([]byte(f[3]))
	if lerr != nil || merr != nil || l > m || m != mark || f[5] != boot || boot == "" {
		// Written under another mark (an older lokt moved the first line)
		// or in another boot (it may not have reached the disk): only the
		// mark is known to be at least every token issued.
		return mark, mark, nil
	}
	return mark, l, nil
}

func parseDigits(b []byte) (uint64, error) {
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseUint(string(b), 10, 64)
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func (g *Guard) badCounter(why string) error {
	return fmt.Errorf("%s: %w (%s); lokt issues no token for this name until it is repaired, since the next one could repeat a token already handed out: write a number above every token ever issued for the name (lokt audit shows them), e.g. printf '%%020d\\n' 1000000 > %s; do not delete the file while the name is in use", g.f.Name(), ErrBadCounter, why, g.f.Name())
}

// SetCounter records v as the last token issued. v must be above what
// Counter returned. Once per Block it moves the durable mark (one
// fdatasync); otherwise it writes only the unsynced last line.
func (g *Guard) SetCounter(v uint64) error {
	if !g.read {
		if _, err := g.Counter(); err != nil {
			return err
		}
	}
	boot := bootID()
	if v > g.mark {
		mark := v
		if boot != "" && v <= ^uint64(0)-(Block-1) {
			mark = v + Block - 1
		}
		// The mark is durable before v is handed out: after any crash the
		// next token starts above it.
		if _, err := g.f.WriteAt(fmt.Appendf(nil, "%020d\n", mark), 0); err != nil {
			return err
		}
		if err := syncData(g.f); err != nil {
			return err
		}
		g.mark = mark
	}
	if boot != "" {
		if _, err := g.f.WriteAt(fmt.Appendf(nil, lastLine, v, g.mark, boot), markLen); err != nil {
			return err
		}
	}
	g.last = v
	return nil
}

// Unlock releases the lock (if held) and closes the file; closing the only
// descriptor drops it.
func (g *Guard) Unlock() error { return g.f.Close() }

// bootID identifies this boot of the host ("" if unknown): the unsynced
// last line of a guard file is trusted only in the boot that wrote it.
// A variable for tests that simulate a reboot.
var bootID = func() string { return bootOnce() }

// fitBoot makes a boot id fit the fixed-width field.
func fitBoot(id string) string {
	if len(id) <= bootLen && !bytes.ContainsAny([]byte(id), " \t\n") {
		return id
	}
	h := fnv.New128a()
	_, _ = h.Write([]byte(id))
	return hex.EncodeToString(h.Sum(nil))
}
