//go:build unix

// Package engine_test holds engine benchmarks of the path guard takes
// (Root.Hold: holder evidence, record, release, evidence sweep), in-process,
// so that no process start-up hides what an operation costs. The repository
// root's bench_test.go covers Acquire/Release; run both with
//
//	go test -run '^$' -bench . . ./bench/engine
package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lokt-dev/lokt"
)

// BenchmarkHoldReleaseLocksInRoot is guard's uncontended cycle, Hold then
// Release, with other locks held in the same root. An operation on one name
// should not cost more as the root fills; if ns/op grows with others, some
// step reads the whole directory.
func BenchmarkHoldReleaseLocksInRoot(b *testing.B) {
	for _, others := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("others=%d", others), func(b *testing.B) {
			r, err := lokt.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			o := lokt.AcquireOptions{Identity: lokt.Identity{Owner: "bench"}, Holder: lokt.Self()}
			for i := range others {
				if _, err := r.Acquire(ctx, fmt.Sprintf("other-%05d", i), o); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				h, err := r.Hold(ctx, "x", lokt.HoldOptions{AcquireOptions: o})
				if err != nil {
					b.Fatal(err)
				}
				if err := h.Release(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
