//go:build unix

package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/internal/audit"
)

// The acquire event is in the log while the command runs, not only once it
// ends: a long command is seen in `lokt audit --follow`.
func TestGuardAuditsAcquireWhileCommandRuns(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	auditTestMust(t, root, nil, 0, "lock", "warm-up") // creates the root and its log
	fifo := filepath.Join(t.TempDir(), "go")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready, acquired := make(chan struct{}), make(chan struct{})
	followed := make(chan error, 1)
	go func() {
		_, err := audit.Follow(ctx, root, audit.FollowOptions{Ready: func() { close(ready) }}, func(_ []byte, r *audit.Record) error {
			if r.Name == "long" && r.Event == string(lokt.EventAcquire) {
				close(acquired)
				cancel()
			}
			return nil
		})
		followed <- err
	}()
	<-ready
	guarded := make(chan auditTestResult, 1)
	go func() {
		// The command blocks until the test opens the FIFO for writing.
		guarded <- auditTestRun(t, root, nil, "guard", "long", "--", "sh", "-c", `read -r x < "$0"`, fifo)
	}()
	// Let the command end, whatever happens: opening the FIFO for writing
	// waits for the command to open it for reading.
	defer func() {
		go func() {
			if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				_ = w.Close()
			}
		}()
		<-guarded
	}()
	select {
	case <-acquired:
	case r := <-guarded:
		t.Fatalf("guard ended before its acquire event was followed: %+v", r)
	case <-time.After(30 * time.Second):
		t.Fatal("no acquire event in the audit log while the command runs")
	}
	if err := <-followed; !errors.Is(err, context.Canceled) {
		t.Errorf("following the audit log: %v", err)
	}
}
