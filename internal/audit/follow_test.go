package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// follow runs Follow in the background and returns once it is watching.
type follow struct {
	got    chan string
	cancel context.CancelFunc
	done   chan struct{}
	st     Stats
	err    error
}

func startFollow(t *testing.T, dir string, opts FollowOptions) *follow {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follow{got: make(chan string, 10000), cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	go func() {
		defer close(f.done)
		f.st, f.err = Follow(ctx, dir, opts, func(_ []byte, rec *Record) error {
			f.got <- fmt.Sprintf("%s:%d", rec.Name, rec.Token)
			return nil
		})
	}()
	select {
	case <-ready:
	case <-f.done:
		t.Fatalf("Follow ended before it was ready: %v", f.err)
	}
	t.Cleanup(func() { _, _ = f.stop(t) })
	return f
}

// expect waits for exactly these records, in this order.
func (f *follow) expect(t *testing.T, want ...string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for _, w := range want {
		select {
		case got := <-f.got:
			if got != w {
				t.Fatalf("followed %s, want %s", got, w)
			}
		case <-f.done:
			t.Fatalf("Follow ended (%v) while waiting for %s", f.err, w)
		case <-timeout:
			t.Fatalf("timed out waiting for %s", w)
		}
	}
}

func (f *follow) stop(t *testing.T) (Stats, error) {
	t.Helper()
	f.cancel()
	<-f.done
	select {
	case extra := <-f.got:
		t.Errorf("unexpected extra record %s", extra)
	default:
	}
	return f.st, f.err
}

func names(name string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s:%d", name, i))
	}
	return out
}

func TestFollowDeliversOnlyNewRecords(t *testing.T) {
	dir := t.TempDir()
	l := New(dir, DefaultConfig())
	defer l.Close()
	appendN(t, l, "x", 0, 2) // before the follower: not delivered
	f := startFollow(t, dir, FollowOptions{})
	appendN(t, l, "x", 2, 5)
	f.expect(t, names("x", 2, 5)...)
	st, err := f.stop(t)
	if !errors.Is(err, context.Canceled) || st.Records != 3 || st.Bad != 0 {
		t.Fatalf("after cancel: %+v %v", st, err)
	}
}

func TestFollowFromStartReplaysGenerations(t *testing.T) {
	needRotation(t)
	dir := t.TempDir()
	l := New(dir, Config{MaxBytes: 1, Keep: 100})
	defer l.Close()
	appendN(t, l, "x", 0, 3) // three rotated files, no audit.log
	plain := New(dir, Config{})
	defer plain.Close()
	appendN(t, plain, "x", 3, 4) // and a current one
	f := startFollow(t, dir, FollowOptions{FromStart: true})
	f.expect(t, names("x", 0, 4)...)
	appendN(t, plain, "x", 4, 5)
	f.expect(t, "x:4")
}

func TestFollowAcrossRotations(t *testing.T) {
	needRotation(t)
	dir := t.TempDir()
	f := startFollow(t, dir, FollowOptions{})
	// Every append rotates: each record is written just after a rotation,
	// and several rotations can happen between two wake-ups.
	tiny := New(dir, Config{MaxBytes: 1, Keep: 1000})
	defer tiny.Close()
	appendN(t, tiny, "r", 0, 40)
	f.expect(t, names("r", 0, 40)...)
	// A few records per file, with a second writer appending meanwhile.
	small := New(dir, Config{MaxBytes: 700, Keep: 1000})
	defer small.Close()
	other := New(dir, Config{})
	defer other.Close()
	for i := range 30 {
		appendN(t, small, "s", i, i+1)
		appendN(t, other, "o", i, i+1)
		f.expect(t, fmt.Sprintf("s:%d", i), fmt.Sprintf("o:%d", i))
	}
}

func TestFollowStartsWithoutCurrentLog(t *testing.T) {
	needRotation(t)
	dir := t.TempDir()
	rot := New(dir, Config{MaxBytes: 1, Keep: 10})
	defer rot.Close()
	appendN(t, rot, "old", 0, 2) // only audit.log.1, .2: already history
	f := startFollow(t, dir, FollowOptions{})
	plain := New(dir, Config{})
	defer plain.Close()
	appendN(t, plain, "new", 0, 2)
	f.expect(t, "new:0", "new:1")

	empty := t.TempDir()
	g := startFollow(t, empty, FollowOptions{})
	l := New(empty, Config{})
	defer l.Close()
	appendN(t, l, "first", 0, 1)
	g.expect(t, "first:0")
}

func TestFollowCountsTornLineOfRotatedFile(t *testing.T) {
	needRotation(t)
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	l := New(dir, Config{})
	defer l.Close()
	appendN(t, l, "x", 0, 1)
	f := startFollow(t, dir, FollowOptions{})
	// A writer died mid-line, then the file was rotated.
	fd, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fd.WriteString(`{"ts":"2030-01-01T00:00:00Z","ev`)
	_ = fd.Close()
	rot := New(dir, Config{MaxBytes: 1, Keep: 5})
	defer rot.Close()
	appendN(t, rot, "x", 1, 2) // glued to the torn line, then rotated away
	appendN(t, l, "x", 2, 3)   // into the new audit.log
	f.expect(t, "x:1", "x:2")
	st, _ := f.stop(t)
	if st.Bad != 1 {
		t.Fatalf("torn line: stats %+v, want 1 bad", st)
	}
}

func TestFollowHandlerErrorAndMissingRoot(t *testing.T) {
	if _, err := Follow(context.Background(), filepath.Join(t.TempDir(), "none"), FollowOptions{}, nil); err == nil {
		t.Fatal("following a missing root: want an error")
	}
	dir := t.TempDir()
	stop := errors.New("stop")
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := Follow(context.Background(), dir, FollowOptions{Ready: func() { close(ready) }, Recheck: time.Hour},
			func([]byte, *Record) error { return stop })
		errc <- err
	}()
	<-ready
	l := New(dir, Config{})
	defer l.Close()
	appendN(t, l, "x", 0, 1)
	if err := <-errc; !errors.Is(err, stop) {
		t.Fatalf("handler error: %v", err)
	}
}
