//go:build unix

package lokt_test

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lokt-dev/lokt"
)

// Engine benchmarks: the cost of the lock operations themselves, without
// process start-up. bench/run.sh measures the CLI against flock(1).
//
//	go test -bench . -run '^$' .

func benchRoot(b *testing.B) *lokt.Root {
	b.Helper()
	r, err := lokt.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// benchHolders starts n sleeping processes to stand for distinct holders:
// a lock's holder must be a live process, or the next acquirer breaks it.
func benchHolders(b *testing.B, n int) []lokt.Holder {
	b.Helper()
	hs := make([]lokt.Holder, n)
	for i := range hs {
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		h, err := lokt.ProcessHolder(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		hs[i] = h
	}
	return hs
}

func benchCycle(b *testing.B, r *lokt.Root, o lokt.AcquireOptions) {
	l, err := r.Acquire(context.Background(), "x", o)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.Release(context.Background(), "x", lokt.ReleaseOptions{Identity: o.Identity, Holder: o.Holder, LockID: l.LockID}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAcquireRelease is one uncontended acquire + release by a live
// process, the record guard writes (not fsynced: a crash ends the holder).
func BenchmarkAcquireRelease(b *testing.B) {
	r := benchRoot(b)
	o := lokt.AcquireOptions{Identity: lokt.Identity{Owner: "bench"}, Holder: lokt.Self()}
	for b.Loop() {
		benchCycle(b, r, o)
	}
}

// BenchmarkAcquireReleaseNoProcess is the same for a --pid 0 lock, whose
// record must survive a crash and is fsynced.
func BenchmarkAcquireReleaseNoProcess(b *testing.B) {
	r := benchRoot(b)
	o := lokt.AcquireOptions{Identity: lokt.Identity{Owner: "bench"}, Holder: lokt.Holder{Host: r.Host()}, TTL: time.Minute}
	for b.Loop() {
		benchCycle(b, r, o)
	}
}

// BenchmarkAcquireReleaseContended has 8 goroutines, each a different
// holder, waiting for one name; ns/op is per acquire + release.
func BenchmarkAcquireReleaseContended(b *testing.B) {
	r := benchRoot(b)
	b.SetParallelism(4) // 4 x GOMAXPROCS goroutines
	holders := benchHolders(b, 4*runtime.GOMAXPROCS(0))
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		h := holders[next.Add(1)-1]
		o := lokt.AcquireOptions{Identity: lokt.Identity{Owner: "bench"}, Holder: h, Wait: true}
		for pb.Next() {
			benchCycle(b, r, o)
		}
	})
}

// BenchmarkHandoff measures how long a blocked waiter takes to hold the
// lock once the holder's release returns, and reports p50/p99.
func BenchmarkHandoff(b *testing.B) {
	r := benchRoot(b)
	hs := benchHolders(b, 2)
	id := lokt.Identity{Owner: "bench"}
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		held, err := r.Acquire(ctx, "x", lokt.AcquireOptions{Identity: id, Holder: hs[0]})
		if err != nil {
			b.Fatal(err)
		}
		// The second blocked attempt comes after the waiter subscribed.
		blocked := make(chan struct{})
		calls := 0
		type result struct {
			l  *lokt.Lock
			at time.Time
		}
		got := make(chan result, 1)
		go func() {
			l, err := r.Acquire(ctx, "x", lokt.AcquireOptions{Identity: id, Holder: hs[1], Wait: true, OnBlocked: func(error) {
				if calls++; calls == 2 {
					close(blocked)
				}
			}})
			if err != nil {
				b.Error(err)
			}
			got <- result{l, time.Now()}
		}()
		<-blocked
		start := time.Now()
		if _, err := r.Release(ctx, "x", lokt.ReleaseOptions{Identity: id, Holder: hs[0], LockID: held.LockID}); err != nil {
			b.Fatal(err)
		}
		res := <-got
		lat = append(lat, res.at.Sub(start))
		if _, err := r.Release(ctx, "x", lokt.ReleaseOptions{Identity: id, Holder: hs[1], LockID: res.l.LockID}); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkAcquireReleaseLocksInRoot repeats the uncontended cycle with
// many other locks held in the same root: each operation touches only its
// own name's files, so the cost should not grow with the root.
func BenchmarkAcquireReleaseLocksInRoot(b *testing.B) {
	for _, others := range []int{0, 100, 10000} {
		b.Run(fmt.Sprintf("others=%d", others), func(b *testing.B) {
			r := benchRoot(b)
			ctx := context.Background()
			o := lokt.AcquireOptions{Identity: lokt.Identity{Owner: "bench"}, Holder: lokt.Self()}
			for i := range others {
				if _, err := r.Acquire(ctx, fmt.Sprintf("other-%d", i), o); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				benchCycle(b, r, o)
			}
		})
	}
}

// BenchmarkContendedWaiters is the contended cycle with 2, 8 and 32
// distinct holders waiting on one name: how throughput scales with waiters.
func BenchmarkContendedWaiters(b *testing.B) {
	for _, waiters := range []int{2, 8, 32} {
		b.Run(fmt.Sprintf("waiters=%d", waiters), func(b *testing.B) {
			r := benchRoot(b)
			holders := benchHolders(b, waiters)
			var wg sync.WaitGroup
			var done atomic.Int64
			total := int64(b.N)
			b.ResetTimer()
			for _, h := range holders {
				wg.Go(func() {
					o := lokt.AcquireOptions{Identity: lokt.Identity{Owner: "bench"}, Holder: h, Wait: true}
					for done.Add(1) <= total {
						benchCycle(b, r, o)
					}
				})
			}
			wg.Wait()
		})
	}
}
