//go:build unix

// Command compare measures lokt against flock(1) and against the floor a Go
// CLI cannot go below, on the same machine, in the same run, side by side:
//
//   - start-up: `true`, an empty static Go program, a Go program that
//     fork/execs `true` and waits (with os/exec, and with a bare
//     syscall.ForkExec as guard does), the same on a cobra command line
//     that catches the signals guard relays (bench/floor/cliguard),
//     `flock FILE true`, `lokt guard x -- true` in an empty root and in a
//     root holding -others locks, and `lokt lock` + `lokt unlock` pairs
//     (held for the caller, and durable: --pid 0 --ttl) against two empty
//     Go starts;
//   - a counter hammered by concurrent processes (exactness checked), in the
//     empty and in the populated root;
//   - the hand-off latency from one holder's release to the next holder's
//     command running.
//
// Every time is wall-clock time of real processes, as a user sees it. The
// contenders are measured interleaved, round-robin with a rotating start,
// so background load on a shared machine falls on all alike; ratios of
// interleaved runs (and the median of per-round ratios) are steadier than
// the absolute times. Peak RSS is wait4's ru_maxrss for the measured
// process: the largest of it and its reaped descendants, which for guard
// and flock is the tool itself, not the much smaller `true`.
//
// bench/run.sh builds everything like a release and runs it; see there.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lokt-dev/lokt"
	"github.com/lokt-dev/lokt/bench/internal/benchutil"
)

type config struct {
	lokt, base, flock, hello, forkexec, cliguard, dir string
	runs, procs, iters, rounds                        int
	handoffs, others, fill                            int
	settle                                            time.Duration
	samples                                           bool
	skip                                              map[string]bool
	gnuTime                                           string
}

func main() {
	var c config
	var skip string
	flag.StringVar(&c.lokt, "lokt", "lokt", "lokt binary to measure (build it like a release, without -race)")
	flag.StringVar(&c.base, "base", "", "another lokt build (say, main's) whose guard row is measured in the same rounds, for a before/after")
	flag.StringVar(&c.flock, "flock", "flock", "flock(1) binary")
	flag.StringVar(&c.hello, "hello", "", "floor: an empty static Go program (bench/floor/hello)")
	flag.StringVar(&c.forkexec, "forkexec", "", "floor: a static Go program that runs its arguments and waits (bench/floor/forkexec)")
	flag.StringVar(&c.cliguard, "cliguard", "", "floor: a cobra command line that catches guard's signals, runs its command and waits, taking no lock (bench/floor/cliguard)")
	flag.StringVar(&c.dir, "dir", "", "scratch directory for lock roots and files (default: a new temporary one)")
	flag.IntVar(&c.runs, "runs", 100, "start-up: interleaved runs of each row")
	flag.IntVar(&c.procs, "procs", 8, "hammer: concurrent processes")
	flag.IntVar(&c.iters, "iters", 25, "hammer: increments per process")
	flag.IntVar(&c.rounds, "rounds", 3, "hammer: interleaved rounds of each contender (the median is reported)")
	flag.IntVar(&c.handoffs, "handoffs", 40, "hand-off: measured hand-offs of each tool")
	flag.IntVar(&c.others, "others", 10000, "locks held in the populated root (0: skip those rows)")
	flag.IntVar(&c.fill, "fill", 8, "goroutines that fill the populated root")
	flag.BoolVar(&c.samples, "samples", false, "hand-off: also print every sample, sorted")
	flag.DurationVar(&c.settle, "settle", 100*time.Millisecond, "hand-off: how long the waiter waits before the release (long enough for a poller to be at a slow interval)")
	flag.StringVar(&c.gnuTime, "time", "/usr/bin/time", "GNU time(1), for peak RSS (\"\": skip the RSS rows)")
	flag.StringVar(&skip, "skip", "", "comma-separated sections to leave out: startup, rss, hammer, handoff")
	flag.Parse()
	c.skip = map[string]bool{}
	for s := range strings.SplitSeq(skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.skip[s] = true
		}
	}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "lokt-bench-")
		benchutil.Check(err)
		benchutil.Defer(func() { _ = os.RemoveAll(d) })
		c.dir = d
	}
	defer benchutil.RunCleanups()
	for _, p := range []*string{&c.lokt, &c.flock} {
		var err error
		*p, err = exec.LookPath(*p)
		benchutil.Check(err)
	}
	if c.hello == "" || c.forkexec == "" || c.cliguard == "" {
		benchutil.Check(errors.New("-hello, -forkexec and -cliguard are required (bench/run.sh builds them)"))
	}

	fmt.Printf("lokt: %s\nscratch: %s\n", c.lokt, c.dir)
	c.populate()
	fmt.Println()
	if !c.skip["startup"] {
		c.startup()
	}
	if !c.skip["rss"] {
		c.rss()
	}
	if !c.skip["hammer"] {
		c.hammer()
	}
	if !c.skip["handoff"] {
		c.handoff()
	}
}

func (c *config) root() string     { return filepath.Join(c.dir, "root") }
func (c *config) fullRoot() string { return filepath.Join(c.dir, "root-full") }

// populate fills the second root with c.others locks held by a live
// process. The first is taken through the engine, exactly as `lokt lock
// NAME --pid P` takes it (record and guard file, no audit line); the rest
// are copies of its two files under other names and lock ids, in the
// documented layout (docs/protocol.md), which is quicker than 10,000
// acquisitions with their fencing-token flushes. Then it checks the work is
// real: lokt.List must judge every one of them live, and the CLI must
// refuse to take one.
func (c *config) populate() {
	if c.others == 0 {
		return
	}
	sleeper := exec.Command("sleep", "86400")
	benchutil.Check(sleeper.Start())
	benchutil.Defer(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	holder, err := lokt.ProcessHolder(sleeper.Process.Pid)
	benchutil.Check(err)
	r, err := lokt.Open(c.fullRoot())
	benchutil.Check(err)
	ctx := context.Background()
	start := time.Now()
	o := lokt.AcquireOptions{Identity: lokt.Identity{Owner: "bench"}, Holder: holder}
	_, err = r.Acquire(ctx, "other-00000", o)
	benchutil.Check(err)
	dir := filepath.Join(c.fullRoot(), "locks")
	var rec map[string]any
	data, err := os.ReadFile(filepath.Join(dir, "other-00000.json"))
	benchutil.Check(err)
	benchutil.Check(json.Unmarshal(data, &rec))
	guardFile, err := os.ReadFile(filepath.Join(dir, ".other-00000.lck"))
	benchutil.Check(err)
	for i := 1; i < c.others; i++ {
		name := fmt.Sprintf("other-%05d", i)
		rec["name"] = name
		rec["lock_id"] = fmt.Sprintf("%032x", 0xb0000000+i)
		data, err := json.MarshalIndent(rec, "", "  ")
		benchutil.Check(err)
		benchutil.Check(os.WriteFile(filepath.Join(dir, name+".json"), append(data, '\n'), 0o600))
		benchutil.Check(os.WriteFile(filepath.Join(dir, "."+name+".lck"), guardFile, 0o600))
	}
	filled := time.Since(start)
	all, err := r.List(ctx)
	benchutil.Check(err)
	live := 0
	for _, s := range all {
		if s.State == lokt.StateLive {
			live++
		}
	}
	if live != c.others {
		benchutil.Check(fmt.Errorf("populated root: %d live locks, want %d", live, c.others))
	}
	last := fmt.Sprintf("other-%05d", c.others-1)
	lock := c.lokt1(c.fullRoot(), "lock", last, "--pid", "0", "--ttl", "1m", "--quiet")
	lock.Stderr = nil
	if err := lock.Run(); exitCode(err) != 2 {
		benchutil.Check(fmt.Errorf("populated root: lokt lock %s gave %v, want exit 2 (held)", last, err))
	}
	fmt.Printf("populated root: %d locks held by pid %d (sleep), made in %s; lokt.List judges all live; lokt lock %s exits 2 (held)\n",
		c.others, sleeper.Process.Pid, filled.Round(time.Millisecond), last)
}

// lokt1 is a lokt command against root.
func (c *config) lokt1(root string, args ...string) *exec.Cmd {
	cmd := command(append([]string{c.lokt}, args...))
	cmd.Env = append(os.Environ(), "LOKT_ROOT="+root)
	return cmd
}

// probe is one row of the start-up table.
type probe struct {
	name    string
	run     func() time.Duration
	samples []time.Duration
	// faults and switches are per run, from wait4's rusage (the process
	// and its reaped children): minor page faults, and voluntary plus
	// involuntary context switches. Counts, so steadier than times under
	// load; the faults are mostly the Go heap and binary being touched.
	faults, switches []time.Duration
}

// usage adds up the rusage of the commands timeRun ran since it was reset.
var usage struct{ faults, switches int64 }

func timeRun(cmd *exec.Cmd) time.Duration {
	start := time.Now()
	benchutil.Check(cmd.Run())
	d := time.Since(start)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		usage.faults += ru.Minflt
		usage.switches += ru.Nvcsw + ru.Nivcsw
	}
	return d
}

func (c *config) startup() {
	trueBin, err := exec.LookPath("true")
	benchutil.Check(err)
	flockFile := filepath.Join(c.dir, "x.flock")
	n := 0
	name := func(prefix string) string { n++; return fmt.Sprintf("%s%d", prefix, n) }
	hello := func() time.Duration { return timeRun(command([]string{c.hello})) }
	pTrue := &probe{name: "true", run: func() time.Duration { return timeRun(command([]string{trueBin})) }}
	pHello := &probe{name: "go hello (empty static main)", run: hello}
	pExec := &probe{name: "go fork/exec true + wait (os/exec)", run: func() time.Duration {
		return timeRun(command([]string{c.forkexec, trueBin}))
	}}
	pRaw := &probe{name: "go fork/exec true + wait (syscall.ForkExec)", run: func() time.Duration {
		return timeRun(command([]string{c.forkexec, "-raw", trueBin}))
	}}
	pCLI := &probe{name: "cobra CLI + signals + fork/exec true (no lock)", run: func() time.Duration {
		return timeRun(command([]string{c.cliguard, "guard", "x", "--", trueBin}))
	}}
	pFlock := &probe{name: "flock FILE true", run: func() time.Duration {
		return timeRun(command([]string{c.flock, flockFile, trueBin}))
	}}
	pGuard := &probe{name: "lokt guard x -- true", run: func() time.Duration {
		return timeRun(c.lokt1(c.root(), "guard", "x", "--", "true"))
	}}
	pHello2 := &probe{name: "2 x go hello", run: func() time.Duration {
		return hello() + hello()
	}}
	// lockPair locks a new name with flags, then unlocks it.
	lockPair := func(label string, flags ...string) *probe {
		return &probe{name: label, run: func() time.Duration {
			nm := name("pair")
			a := timeRun(c.lokt1(c.root(), append([]string{"lock", nm, "--quiet"}, flags...)...))
			b := timeRun(c.lokt1(c.root(), "unlock", nm))
			return a + b
		}}
	}
	// A plain lock is held for its caller (this driver) and written
	// without an fsync; one held for no process with a TTL must survive a
	// crash, which costs its lock three syncs and its unlock one.
	pPair := lockPair("lokt lock N + unlock N")
	pDurable := lockPair("lokt lock N --pid 0 --ttl 1m + unlock N", "--pid", "0", "--ttl", "1m")
	probes := []*probe{pTrue, pHello, pExec, pRaw, pCLI, pFlock, pGuard, pHello2, pPair, pDurable}
	var pBase *probe
	if c.base != "" {
		pBase = &probe{name: "lokt guard x -- true (-base build)", run: func() time.Duration {
			cmd := command([]string{c.base, "guard", "x", "--", "true"})
			cmd.Env = append(os.Environ(), "LOKT_ROOT="+c.root())
			return timeRun(cmd)
		}}
		probes = append(probes, pBase)
	}
	var pFull *probe
	if c.others > 0 {
		pFull = &probe{name: fmt.Sprintf("lokt guard x -- true, %d locks in root", c.others), run: func() time.Duration {
			return timeRun(c.lokt1(c.fullRoot(), "guard", "x", "--", "true"))
		}}
		probes = append(probes, pFull)
	}
	// Commands' stdout is /dev/null (exec.Cmd's default).
	for _, p := range probes { // warm the page cache and the roots
		p.run()
	}
	for i := range c.runs {
		for j := range probes {
			p := probes[(i+j)%len(probes)]
			usage.faults, usage.switches = 0, 0
			p.samples = append(p.samples, p.run())
			p.faults = append(p.faults, time.Duration(usage.faults))
			p.switches = append(p.switches, time.Duration(usage.switches))
		}
	}

	fmt.Printf("start-up: %d interleaved runs of each row\n", c.runs)
	tw := table()
	fmt.Fprintln(tw, "row\tp50\tmin\tp99\tpage faults\tctx switches\t")
	for _, p := range probes {
		ds := p.samples
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t\n", p.name, benchutil.Ms(benchutil.Pct(ds, 50)), benchutil.Ms(benchutil.Pct(ds, 0)), benchutil.Ms(benchutil.Pct(ds, 99)), int64(benchutil.Pct(p.faults, 50)), int64(benchutil.Pct(p.switches, 50)))
	}
	benchutil.Check(tw.Flush())

	fmt.Println()
	tw = table()
	fmt.Fprintln(tw, "comparison (p50)\tratio\tpaired\tdifference\ttarget\t\t")
	compare(tw, "guard / flock(1)", pGuard, pFlock, "<= 1.6x", ratioTarget(1.6))
	compare(tw, "guard - fork/exec floor (os/exec)", pGuard, pExec, "<= +0.5 ms", diffTarget(500*time.Microsecond))
	compare(tw, "guard - fork/exec floor (raw)", pGuard, pRaw, "", nil)
	compare(tw, "guard - cobra CLI + signals floor", pGuard, pCLI, "", nil)
	compare(tw, "cobra CLI + signals floor / flock(1)", pCLI, pFlock, "", nil)
	compare(tw, "lock+unlock / 2 x go hello", pPair, pHello2, "<= 2x", ratioTarget(2))
	compare(tw, "lock --pid 0 --ttl + unlock / 2 x go hello", pDurable, pHello2, "", nil)
	if pBase != nil {
		compare(tw, "guard / guard of the -base build", pGuard, pBase, "", nil)
	}
	if pFull != nil {
		compare(tw, fmt.Sprintf("guard, %d locks / empty root", c.others), pFull, pGuard, "no regression (<= 1.10x)", ratioTarget(1.10))
	}
	compare(tw, "go hello - true (Go runtime start)", pHello, pTrue, "", nil)
	compare(tw, "os/exec - raw fork/exec", pExec, pRaw, "", nil)
	compare(tw, "flock(1) - true", pFlock, pTrue, "", nil)
	benchutil.Check(tw.Flush())
	fmt.Println("  ratio: of the p50s; paired: median of the per-round ratios (or differences), steadier under load")
	fmt.Println("  page faults, ctx switches: medians per run (wait4 rusage, the process and its reaped children)")
	fmt.Println()
}

// rss reports peak RSS (ru_maxrss) of each tool, through GNU time(1):
// a process started with vfork, as Go starts every child, inherits its
// parent's high-water mark when it execs, so the driver's own RSS would
// hide the tool's; time(1) forks from a small C process. guard's figure is
// guard's own (its child, smaller, is reaped into the same maximum).
func (c *config) rss() {
	if c.gnuTime == "" {
		return
	}
	if _, err := exec.LookPath(c.gnuTime); err != nil {
		fmt.Printf("peak RSS: skipped, no GNU time(1) at %s (apt-get install time)\n\n", c.gnuTime)
		return
	}
	trueBin, err := exec.LookPath("true")
	benchutil.Check(err)
	out := filepath.Join(c.dir, "rss")
	unlocked := func() { benchutil.Check(c.lokt1(c.root(), "unlock", "rss").Run()) }
	locked := func() {
		benchutil.Check(c.lokt1(c.root(), "lock", "rss", "--pid", "0", "--ttl", "1m", "--quiet").Run())
	}
	var before, after func() // around each measured run
	measure := func(root string, argv ...string) int64 {
		defer func() { before, after = nil, nil }()
		var kib []int
		for range 5 {
			if before != nil {
				before()
			}
			cmd := command(append([]string{c.gnuTime, "-f", "%M", "-o", out}, argv...))
			cmd.Env = append(os.Environ(), "LOKT_ROOT="+root)
			benchutil.Check(cmd.Run())
			if after != nil {
				after()
			}
			b, err := os.ReadFile(out)
			benchutil.Check(err)
			n, err := strconv.Atoi(strings.TrimSpace(string(b)))
			benchutil.Check(err)
			kib = append(kib, n)
		}
		slices.Sort(kib)
		return int64(kib[len(kib)/2])
	}
	type row struct {
		name string
		kib  int64
	}
	flockKiB := measure(c.root(), c.flock, filepath.Join(c.dir, "x.flock"), trueBin)
	guardKiB := measure(c.root(), c.lokt, "guard", "x", "--", trueBin)
	rows := []row{
		{"true", measure(c.root(), trueBin)},
		{"go hello", measure(c.root(), c.hello)},
		{"go fork/exec true (os/exec)", measure(c.root(), c.forkexec, trueBin)},
		{"flock FILE true", flockKiB},
		{"lokt guard x -- true", guardKiB},
	}
	after = unlocked
	rows = append(rows, row{"lokt lock N --pid 0 --ttl 1m", measure(c.root(), c.lokt, "lock", "rss", "--pid", "0", "--ttl", "1m", "--quiet")})
	before = locked
	rows = append(rows, row{"lokt unlock N", measure(c.root(), c.lokt, "unlock", "rss")})
	if c.others > 0 {
		rows = append(rows, row{fmt.Sprintf("lokt guard x -- true, %d locks in root", c.others), measure(c.fullRoot(), c.lokt, "guard", "x", "--", trueBin)})
	}
	fmt.Println("peak RSS (ru_maxrss via GNU time, median of 5)")
	tw := table()
	fmt.Fprintln(tw, "row\tpeak RSS\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d KiB\t\n", r.name, r.kib)
	}
	fmt.Fprintf(tw, "guard / flock(1)\t%.2fx\t\n", float64(guardKiB)/float64(flockKiB))
	benchutil.Check(tw.Flush())
	fmt.Println()
}

// verdict says whether a comparison meets its target, given the ratio and
// difference of the p50s.
type verdict func(ratio float64, diff time.Duration) bool

func ratioTarget(limit float64) verdict {
	return func(r float64, _ time.Duration) bool { return r <= limit }
}

func diffTarget(limit time.Duration) verdict {
	return func(_ float64, d time.Duration) bool { return d <= limit }
}

// compare prints a against b: the ratio and difference of their p50s and,
// since the rows were measured interleaved, the median of the per-round
// ratios and differences.
func compare(w io.Writer, what string, a, b *probe, target string, ok verdict) {
	pa, pb := benchutil.Pct(a.samples, 50), benchutil.Pct(b.samples, 50)
	ratios := make([]time.Duration, len(a.samples)) // ratio x 1e6, to reuse pct
	diffs := make([]time.Duration, len(a.samples))
	for i := range a.samples {
		ratios[i] = time.Duration(float64(a.samples[i]) / float64(b.samples[i]) * 1e6)
		diffs[i] = a.samples[i] - b.samples[i]
	}
	r := float64(pa) / float64(pb)
	paired := fmt.Sprintf("%.2fx", float64(benchutil.Pct(ratios, 50))/1e6)
	diff := fmt.Sprintf("%+.2f ms (paired %+.2f)", benchutil.Millis(pa-pb), benchutil.Millis(benchutil.Pct(diffs, 50)))
	v := ""
	if ok != nil {
		v = "NOT met"
		if ok(r, pa-pb) {
			v = "met"
		}
	}
	fmt.Fprintf(w, "%s\t%.2fx\t%s\t%s\t%s\t%s\t\n", what, r, paired, diff, target, v)
}

// hammer has procs processes each increment a counter file iters times,
// each increment a separate locked `sh -c`; a lost update would show.
func (c *config) hammer() {
	counter := filepath.Join(c.dir, "counter")
	const critical = `n=$(cat "$COUNTER"); echo $((n+1)) > "$COUNTER"`
	type contender struct {
		label string
		argv  func() []string
		root  string
		ds    []time.Duration
	}
	lokt := func() []string {
		return []string{c.lokt, "guard", "cnt", "--wait", "--quiet", "--", "sh", "-c", critical}
	}
	cs := []*contender{
		{label: "lokt", argv: lokt, root: c.root()},
		{label: "flock(1)", argv: func() []string {
			return []string{c.flock, filepath.Join(c.dir, "cnt.flock"), "sh", "-c", critical}
		}, root: c.root()},
	}
	if c.others > 0 {
		cs = append(cs, &contender{label: fmt.Sprintf("lokt, %d locks in root", c.others), argv: lokt, root: c.fullRoot()})
	}
	round := func(t *contender) time.Duration {
		benchutil.Check(os.WriteFile(counter, []byte("0\n"), 0o600))
		env := append(os.Environ(), "COUNTER="+counter, "LOKT_ROOT="+t.root)
		var wg sync.WaitGroup
		start := time.Now()
		for range c.procs {
			wg.Go(func() {
				for range c.iters {
					cmd := command(t.argv())
					cmd.Env = env
					benchutil.Check(cmd.Run())
				}
			})
		}
		wg.Wait()
		d := time.Since(start)
		b, err := os.ReadFile(counter)
		benchutil.Check(err)
		if got, want := strings.TrimSpace(string(b)), strconv.Itoa(c.procs*c.iters); got != want {
			benchutil.Check(fmt.Errorf("%s hammer: counter %s, want %s: mutual exclusion failed", t.label, got, want))
		}
		return d
	}
	for i := range c.rounds {
		for j := range cs {
			t := cs[(i+j)%len(cs)]
			t.ds = append(t.ds, round(t))
		}
	}
	fmt.Printf("hammer: %d processes x %d locked increments of one counter, %d interleaved rounds; counter exact (%d) in every round\n",
		c.procs, c.iters, c.rounds, c.procs*c.iters)
	tw := table()
	fmt.Fprintln(tw, "contender\tmedian\tbest\tworst\tvs flock(1) (median)\ttarget\t\t")
	for _, t := range cs {
		r := float64(benchutil.Pct(t.ds, 50)) / float64(benchutil.Pct(cs[1].ds, 50))
		target, v := "", ""
		switch {
		case t == cs[0]:
			target, v = "<= 1.3x", met(r <= 1.3)
		case len(cs) > 2 && t == cs[2]:
			r0 := float64(benchutil.Pct(t.ds, 50)) / float64(benchutil.Pct(cs[0].ds, 50))
			target, v = fmt.Sprintf("%.2fx empty root", r0), met(r0 <= 1.10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2fx\t%s\t%s\t\n", t.label, benchutil.Ms(benchutil.Pct(t.ds, 50)), benchutil.Ms(benchutil.Pct(t.ds, 0)), benchutil.Ms(benchutil.Pct(t.ds, 100)), r, target, v)
	}
	benchutil.Check(tw.Flush())
	fmt.Println()
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// handoff measures, as the driver sees it, the time from releasing a
// holder (closing its command's stdin) to the waiter's command printing.
func (c *config) handoff() {
	lockArgv := func(wait bool, argv ...string) []string {
		args := []string{c.lokt, "guard", "h"}
		if wait {
			args = append(args, "--wait", "--quiet")
		}
		return append(append(args, "--"), argv...)
	}
	flockArgv := func(_ bool, argv ...string) []string {
		return append([]string{c.flock, filepath.Join(c.dir, "h.flock")}, argv...)
	}
	env := append(os.Environ(), "LOKT_ROOT="+c.root())
	one := func(argv func(bool, ...string) []string) time.Duration {
		holder := command(argv(false, "sh", "-c", "echo ready; exec cat"))
		holder.Env = env
		hin, err := holder.StdinPipe()
		benchutil.Check(err)
		hout := pipeLines(holder)
		benchutil.Check(holder.Start())
		expect(hout, "ready")

		waiter := command(argv(true, "echo", "go"))
		waiter.Env = env
		wout := pipeLines(waiter)
		benchutil.Check(waiter.Start())
		// No event says "the waiter is blocked"; give it time to get there.
		time.Sleep(c.settle)

		start := time.Now()
		benchutil.Check(hin.Close())
		expect(wout, "go")
		d := time.Since(start)
		benchutil.Check(holder.Wait())
		benchutil.Check(waiter.Wait())
		return d
	}
	var l, f []time.Duration
	for range c.handoffs {
		l = append(l, one(lockArgv))
		f = append(f, one(flockArgv))
	}
	fmt.Printf("hand-off: release -> next holder's command prints, %d interleaved hand-offs of each\n", c.handoffs)
	tw := table()
	fmt.Fprintln(tw, "stat\tlokt\tflock(1)\tlokt/flock\ttarget\t\t")
	r := float64(benchutil.Pct(l, 50)) / float64(benchutil.Pct(f, 50))
	fmt.Fprintf(tw, "p50\t%s\t%s\t%.2fx\t<= 1.5x\t%s\t\n", benchutil.Ms(benchutil.Pct(l, 50)), benchutil.Ms(benchutil.Pct(f, 50)), r, met(r <= 1.5))
	fmt.Fprintf(tw, "p99\t%s\t%s\t%.2fx\treported\t\t\n", benchutil.Ms(benchutil.Pct(l, 99)), benchutil.Ms(benchutil.Pct(f, 99)), float64(benchutil.Pct(l, 99))/float64(benchutil.Pct(f, 99)))
	benchutil.Check(tw.Flush())
	if c.samples {
		slices.Sort(l)
		slices.Sort(f)
		fmt.Printf("\nhand-off samples, lokt:  %v\nhand-off samples, flock: %v\n", l, f)
	}
	fmt.Println()
}

func table() *tabwriter.Writer {
	return tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
}

func command(argv []string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	return cmd
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func pipeLines(cmd *exec.Cmd) *bufio.Reader {
	r, err := cmd.StdoutPipe()
	benchutil.Check(err)
	return bufio.NewReader(r)
}

func expect(r *bufio.Reader, want string) {
	line, err := r.ReadString('\n')
	if errors.Is(err, io.EOF) && line == "" {
		benchutil.Check(fmt.Errorf("expected %q, got end of output", want))
	}
	benchutil.Check(err)
	if strings.TrimSpace(line) != want {
		benchutil.Check(fmt.Errorf("expected %q, got %q", want, line))
	}
}
