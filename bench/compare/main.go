// Command compare measures lokt against flock(1) on the same machine, in
// the same run, side by side: an uncontended guarded command, a counter
// hammered by concurrent processes, and the hand-off latency from one
// holder's release to the next holder's command running. bench/run.sh
// builds lokt and runs it; see there.
//
// Every number is wall-clock time of real processes, as a user sees it.
// The two tools are measured interleaved, so background load on the
// machine falls on both alike.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

func main() {
	var c config
	flag.StringVar(&c.lokt, "lokt", "lokt", "lokt binary to measure (build it without -race)")
	flag.StringVar(&c.flock, "flock", "flock", "flock(1) binary")
	flag.StringVar(&c.dir, "dir", "", "scratch directory for lock roots and files (default: a new temporary one)")
	flag.IntVar(&c.runs, "runs", 200, "uncontended: runs of each tool")
	flag.IntVar(&c.procs, "procs", 8, "hammer: concurrent processes")
	flag.IntVar(&c.iters, "iters", 25, "hammer: increments per process")
	flag.IntVar(&c.rounds, "rounds", 3, "hammer: rounds of each tool (the median is reported)")
	flag.IntVar(&c.handoffs, "handoffs", 50, "hand-off: measured hand-offs of each tool")
	flag.BoolVar(&c.samples, "samples", false, "hand-off: also print every sample, sorted")
	flag.DurationVar(&c.settle, "settle", 150*time.Millisecond, "hand-off: how long the waiter waits before the release (long enough for a poller to be at a slow interval)")
	flag.Parse()
	if c.dir == "" {
		d, err := os.MkdirTemp("", "lokt-bench-")
		check(err)
		defer func() { _ = os.RemoveAll(d) }()
		c.dir = d
	}
	var err error
	c.lokt, err = exec.LookPath(c.lokt)
	check(err)
	c.flock, err = exec.LookPath(c.flock)
	check(err)

	fmt.Printf("lokt vs flock(1): %d CPUs, %s/%s, scratch %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, c.dir)
	fmt.Printf("lokt: %s\n\n", c.lokt)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measurement\tstat\tlokt\tflock(1)\tlokt/flock\t")

	l, f := c.floor()
	row(tw, fmt.Sprintf("floor: lokt version vs true (%d runs)", c.runs), "p50", pct(l, 50), pct(f, 50))

	l, f = c.uncontended()
	row(tw, fmt.Sprintf("uncontended guard x -- true (%d runs)", c.runs), "p50", pct(l, 50), pct(f, 50))
	row(tw, "", "mean", mean(l), mean(f))
	row(tw, "", "p99", pct(l, 99), pct(f, 99))

	l, f = c.hammer()
	row(tw, fmt.Sprintf("hammer %dx%d counter (total, %d rounds)", c.procs, c.iters, c.rounds), "median", pct(l, 50), pct(f, 50))
	row(tw, "", "best", pct(l, 0), pct(f, 0))

	l, f = c.handoff()
	row(tw, fmt.Sprintf("hand-off release -> next command (%d)", c.handoffs), "p50", pct(l, 50), pct(f, 50))
	row(tw, "", "p99", pct(l, 99), pct(f, 99))
	row(tw, "", "mean", mean(l), mean(f))
	check(tw.Flush())
	if c.samples {
		slices.Sort(l)
		slices.Sort(f)
		fmt.Printf("\nhand-off samples, lokt:  %v\nhand-off samples, flock: %v\n", l, f)
	}
}

type config struct {
	lokt, flock, dir                     string
	runs, procs, iters, rounds, handoffs int
	settle                               time.Duration
	samples                              bool
}

// tool is one contender: argv runs a command under the lock name (a lokt
// lock, or a flock(1) file), waiting for it if wait is set (flock always
// waits).
type tool struct {
	label string
	argv  func(name string, wait bool, argv ...string) []string
}

func (c *config) tools(tag string) (lokt, flock tool) {
	root := filepath.Join(c.dir, tag+"-root")
	lokt = tool{"lokt", func(name string, wait bool, argv ...string) []string {
		args := []string{c.lokt, "guard", name}
		if wait {
			args = append(args, "--wait", "--quiet")
		}
		return append(append(args, "--"), argv...)
	}}
	flock = tool{"flock", func(name string, _ bool, argv ...string) []string {
		return append([]string{c.flock, filepath.Join(c.dir, tag+"-"+name+".flock")}, argv...)
	}}
	check(os.Setenv("LOKT_ROOT", root))
	return lokt, flock
}

// floor is what no lock work can go below: starting the lokt binary (the
// Go runtime) against starting a trivial C program.
func (c *config) floor() (lokt, other []time.Duration) {
	trueBin, err := exec.LookPath("true")
	check(err)
	for range c.runs {
		lokt = append(lokt, timeRun(command([]string{c.lokt, "version"})))
		other = append(other, timeRun(command([]string{trueBin})))
	}
	return lokt, other
}

func timeRun(cmd *exec.Cmd) time.Duration {
	start := time.Now()
	check(cmd.Run())
	return time.Since(start)
}

func (c *config) uncontended() (lokt, flock []time.Duration) {
	tl, tf := c.tools("uncontended")
	for range c.runs {
		lokt = append(lokt, timeRun(command(tl.argv("x", false, "true"))))
		flock = append(flock, timeRun(command(tf.argv("x", false, "true"))))
	}
	return lokt, flock
}

// hammer has procs processes each increment a counter file iters times,
// each increment a separate locked `sh -c`; a lost update would show.
func (c *config) hammer() (lokt, flock []time.Duration) {
	tl, tf := c.tools("hammer")
	counter := filepath.Join(c.dir, "counter")
	check(os.Setenv("COUNTER", counter))
	const critical = `n=$(cat "$COUNTER"); echo $((n+1)) > "$COUNTER"`
	round := func(t tool) time.Duration {
		check(os.WriteFile(counter, []byte("0\n"), 0o600))
		var wg sync.WaitGroup
		start := time.Now()
		for range c.procs {
			wg.Go(func() {
				for range c.iters {
					check(command(t.argv("cnt", true, "sh", "-c", critical)).Run())
				}
			})
		}
		wg.Wait()
		d := time.Since(start)
		b, err := os.ReadFile(counter)
		check(err)
		if got, want := strings.TrimSpace(string(b)), strconv.Itoa(c.procs*c.iters); got != want {
			check(fmt.Errorf("%s hammer: counter %s, want %s: mutual exclusion failed", t.label, got, want))
		}
		return d
	}
	for range c.rounds {
		lokt = append(lokt, round(tl))
		flock = append(flock, round(tf))
	}
	return lokt, flock
}

// handoff measures, as the driver sees it, the time from releasing a
// holder (closing its command's stdin) to the waiter's command printing.
func (c *config) handoff() (lokt, flock []time.Duration) {
	tl, tf := c.tools("handoff")
	one := func(t tool) time.Duration {
		holder := command(t.argv("h", false, "sh", "-c", "echo ready; exec cat"))
		hin, err := holder.StdinPipe()
		check(err)
		hout := pipeLines(holder)
		check(holder.Start())
		expect(hout, "ready")

		waiter := command(t.argv("h", true, "echo", "go"))
		wout := pipeLines(waiter)
		check(waiter.Start())
		// No event says "the waiter is blocked"; give it time to get there.
		time.Sleep(c.settle)

		start := time.Now()
		check(hin.Close())
		expect(wout, "go")
		d := time.Since(start)
		check(holder.Wait())
		check(waiter.Wait())
		return d
	}
	for range c.handoffs {
		lokt = append(lokt, one(tl))
		flock = append(flock, one(tf))
	}
	return lokt, flock
}

func command(argv []string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	return cmd
}

func pipeLines(cmd *exec.Cmd) *bufio.Reader {
	r, err := cmd.StdoutPipe()
	check(err)
	return bufio.NewReader(r)
}

func expect(r *bufio.Reader, want string) {
	line, err := r.ReadString('\n')
	if errors.Is(err, io.EOF) && line == "" {
		check(fmt.Errorf("expected %q, got end of output", want))
	}
	check(err)
	if strings.TrimSpace(line) != want {
		check(fmt.Errorf("expected %q, got %q", want, line))
	}
}

func row(w io.Writer, what, stat string, l, f time.Duration) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.2fx\t\n", what, stat, round(l), round(f), float64(l)/float64(f))
}

func round(d time.Duration) time.Duration {
	switch {
	case d < 10*time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d < time.Second:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// pct is the p-th percentile (nearest rank; 0 is the minimum).
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}
