// Package benchutil holds what the benchmark drivers share: formatting and
// percentiles of durations, and the clean-ups that must run however a
// driver exits.
package benchutil

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Millis is d in milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Ms formats d in milliseconds, with two decimals below 10 ms.
func Ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", Millis(d))
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", Millis(d))
	}
	return fmt.Sprintf("%.3f s", d.Seconds())
}

// Pct is the p-th percentile of ds (nearest rank; 0 is the minimum, 100
// the maximum).
func Pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

var cleanups []func()

// Defer registers f to run, last registered first, before the driver
// exits: scratch directories, members and sleepers it started.
func Defer(f func()) { cleanups = append(cleanups, f) }

// RunCleanups runs what Defer registered, once.
func RunCleanups() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

// Check ends the driver on err, after its clean-ups.
func Check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		RunCleanups()
		os.Exit(1)
	}
}
