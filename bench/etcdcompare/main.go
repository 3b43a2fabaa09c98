//go:build unix

// Command etcdcompare measures lokt on etcd side by side with `etcdctl lock`
// doing the same work, on members it starts itself (a loopback single member
// and a loopback 3-member cluster, from the installed etcd) and kills at the
// end:
//
//   - cycle: `lokt guard NAME -- true` against `etcdctl lock NAME true`, the
//     whole acquire, run, release of one process;
//   - acquire: from starting the holder to its command's first output;
//   - release: from its command's end to the holder process's exit;
//   - hand-off: from the holder's command's end to the output of the command
//     of a waiter already in line (lokt guard --wait; etcdctl lock waits by
//     default);
//   - lokt lock --ttl --pid 0 and lokt unlock, and the floor beside them:
//     `etcdctl put`, one process that makes one write.
//
// The holder's command is `sh -c 'echo held; exec cat FIFO'`: it ends when
// the driver closes the FIFO, for both tools alike. Every time is wall-clock
// time of real processes, as a user sees it, process start-up included. The
// contenders run interleaved, one of each per round in a rotating order, so
// background load falls on all alike; the p50 is the median of all rounds.
//
// It also measures how long guard takes to report a lost lease (-loss
// trials of each way of losing it; see leaseLoss), and with -before it
// measures another lokt binary beside -lokt.
//
// bench/etcd.sh builds lokt and runs it; see there.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lokt-dev/lokt/bench/internal/benchutil"
	"github.com/lokt-dev/lokt/internal/etcdtest"
)

type config struct {
	lokt, before, etcdctl, dir string
	runs, loss                 int
	sizes                      []int
	settle, ttl                time.Duration
}

func main() {
	var c config
	var sizes string
	flag.StringVar(&c.lokt, "lokt", "lokt", "lokt binary with the etcd client (a plain go build, or lokt-full)")
	flag.StringVar(&c.before, "before", "", "another lokt binary (e.g. built from main) to measure beside -lokt: cycle, acquire, release, hand-off")
	flag.StringVar(&c.etcdctl, "etcdctl", "etcdctl", "etcdctl binary (the etcd-client package)")
	flag.StringVar(&c.dir, "dir", "", "scratch directory (default: a new temporary one)")
	flag.IntVar(&c.runs, "runs", 40, "interleaved rounds; each measures every row once")
	flag.IntVar(&c.loss, "loss", 5, "lease-loss trials of each kind (0: skip)")
	flag.StringVar(&sizes, "members", "1,3", "cluster sizes to measure, comma-separated")
	flag.DurationVar(&c.settle, "settle", 100*time.Millisecond, "hand-off: how long the waiter sits in line before the release")
	flag.DurationVar(&c.ttl, "ttl", 2*time.Second, "lease loss: the guard's LOKT_ETCD_LEASE_TTL")
	flag.Parse()
	for s := range strings.SplitSeq(sizes, ",") {
		var n int
		_, err := fmt.Sscan(strings.TrimSpace(s), &n)
		benchutil.Check(err)
		c.sizes = append(c.sizes, n)
	}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "lokt-etcd-bench-")
		benchutil.Check(err)
		benchutil.Defer(func() { _ = os.RemoveAll(d) })
		c.dir = d
	}
	defer benchutil.RunCleanups()
	// Interrupted: still kill the members and remove the scratch directory.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		benchutil.RunCleanups()
		os.Exit(1)
	}()
	for _, p := range []*string{&c.lokt, &c.etcdctl} {
		var err error
		*p, err = exec.LookPath(*p)
		benchutil.Check(err)
	}
	for _, n := range c.sizes {
		c.cluster(n)
	}
}

// bench is one cluster under measurement.
type bench struct {
	*config
	c       *etcdtest.Cluster
	cli     *clientv3.Client
	eps     string // HOST:PORT,... for etcdctl
	backend string // LOKT_BACKEND
	fifo    string
	n       int
}

func (c *config) cluster(n int) {
	dir := filepath.Join(c.dir, fmt.Sprintf("c%d", n))
	benchutil.Check(os.MkdirAll(dir, 0o700))
	cl, err := etcdtest.New(dir, n)
	benchutil.Check(err)
	benchutil.Defer(cl.Kill)
	cli, err := clientv3.New(clientv3.Config{Endpoints: cl.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	benchutil.Check(err)
	b := &bench{config: c, c: cl, cli: cli, eps: strings.Join(cl.Endpoints(), ","), backend: cl.Backend("bench"), fifo: filepath.Join(dir, "fifo"), n: n}
	benchutil.Check(syscall.Mkfifo(b.fifo, 0o600))
	fmt.Printf("\n## %d member(s), --heartbeat-interval=20 --election-timeout=200, %d interleaved rounds; load average %s\n", n, c.runs, loadavg())
	if c.runs > 0 {
		b.latency()
	}
	if c.loss > 0 {
		b.leaseLoss()
	}
	fmt.Printf("# load average at the end: %s\n", loadavg())
	_ = cli.Close()
	cl.Kill()
}

// row is one measured quantity; samples are per round.
type row struct {
	name    string
	samples []time.Duration
}

func (b *bench) latency() {
	rows := map[string]*row{}
	var order []string
	add := func(name string, d time.Duration) {
		r := rows[name]
		if r == nil {
			r = &row{name: name}
			rows[name] = r
			order = append(order, name)
		}
		r.samples = append(r.samples, d)
	}
	L := func(args ...string) []string { return append([]string{b.lokt}, args...) }
	E := func(args ...string) []string { return append([]string{b.etcdctl, "--endpoints", b.eps}, args...) }
	hold := []string{"sh", "-c", `echo held; exec cat "$0" >/dev/null`, b.fifo}
	type step struct {
		name string
		run  func()
	}
	var steps []step
	if b.before != "" {
		B := func(args ...string) []string { return append([]string{b.before}, args...) }
		steps = append(steps,
			step{"cycle before", func() { add("cycle: lokt (-before) guard NAME -- true", b.timed(B("guard", "cb", "--", "true"))) }},
			step{"uncontended before", func() {
				a, r := b.holdRelease(B(append([]string{"guard", "ub", "--"}, hold...)...))
				add("acquire: lokt (-before) guard", a)
				add("release: lokt (-before) guard", r)
			}},
			step{"handoff before", func() {
				add("hand-off: lokt (-before) guard --wait", b.handoff(B(append([]string{"guard", "hb", "--"}, hold...)...), B("guard", "hb", "--wait", "--", "echo", "go"), "bench/holders/hb/", 2))
			}},
		)
	}
	steps = append(steps, []step{
		{"cycle lokt", func() { add("cycle: lokt guard NAME -- true", b.timed(L("guard", "c", "--", "true"))) }},
		{"cycle etcdctl", func() { add("cycle: etcdctl lock NAME true", b.timed(E("lock", "ec", "true"))) }},
		{"uncontended lokt", func() {
			a, r := b.holdRelease(L(append([]string{"guard", "u", "--"}, hold...)...))
			add("acquire: lokt guard (start to CMD's output)", a)
			add("release: lokt guard (CMD's end to exit)", r)
		}},
		{"uncontended etcdctl", func() {
			a, r := b.holdRelease(E(append([]string{"lock", "eu", "--"}, hold...)...))
			add("acquire: etcdctl lock (start to CMD's output)", a)
			add("release: etcdctl lock (CMD's end to exit)", r)
		}},
		{"lock unlock", func() {
			add("acquire: lokt lock NAME --ttl 1m --pid 0", b.timed(L("lock", "l", "--ttl", "1m", "--pid", "0", "-q")))
			add("release: lokt unlock NAME", b.timed(L("unlock", "l")))
		}},
		{"floor", func() { add("floor: etcdctl put KEY VALUE (one write)", b.timed(E("put", "floor", "x"))) }},
		{"handoff lokt", func() {
			add("hand-off: lokt guard --wait", b.handoff(L(append([]string{"guard", "h", "--"}, hold...)...), L("guard", "h", "--wait", "--", "echo", "go"), "bench/holders/h/", 2))
		}},
		{"handoff etcdctl", func() {
			add("hand-off: etcdctl lock", b.handoff(E(append([]string{"lock", "eh", "--"}, hold...)...), E("lock", "eh", "echo", "go"), "eh/", 2))
		}},
	}...)
	for i := range b.runs {
		for j := range steps {
			steps[(i+j)%len(steps)].run()
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "row\tp50\tp99\tmin\t")
	for _, name := range order {
		s := rows[name].samples
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t\n", name, benchutil.Ms(benchutil.Pct(s, 50)), benchutil.Ms(benchutil.Pct(s, 99)), benchutil.Ms(benchutil.Pct(s, 0)))
	}
	benchutil.Check(w.Flush())
	ratio := func(a, e string) {
		ra, re := rows[a].samples, rows[e].samples
		var per []float64
		for i := range ra {
			per = append(per, float64(ra[i])/float64(re[i]))
		}
		slices.Sort(per)
		fmt.Printf("%s / %s: ratio of p50s %.2f, median of per-round ratios %.2f\n", a, e, float64(benchutil.Pct(ra, 50))/float64(benchutil.Pct(re, 50)), per[len(per)/2])
	}
	ratio("cycle: lokt guard NAME -- true", "cycle: etcdctl lock NAME true")
	ratio("hand-off: lokt guard --wait", "hand-off: etcdctl lock")
	if b.before != "" {
		ratio("hand-off: lokt guard --wait", "hand-off: lokt (-before) guard --wait")
		ratio("cycle: lokt guard NAME -- true", "cycle: lokt (-before) guard NAME -- true")
	}
}

// timed runs argv to its end and returns its wall time.
func (b *bench) timed(argv []string) time.Duration {
	cmd := b.command(argv)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		benchutil.Check(fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out))
	}
	return d
}

func (b *bench) command(argv []string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LOKT_BACKEND="+b.backend, "ETCDCTL_API=3")
	return cmd
}

// holder starts argv, whose command prints "held" and then waits on the
// FIFO, and returns once it printed.
func (b *bench) holder(argv []string) (*exec.Cmd, time.Duration) {
	cmd := b.command(argv)
	out, started := pipeLines(cmd)
	cmd.Stderr = os.Stderr
	t0 := time.Now()
	benchutil.Check(cmd.Start())
	started()
	expectLine(out, "held")
	return cmd, time.Since(t0)
}

// endHolder ends the holder's command (cat sees end of file) and returns
// when that happened.
func (b *bench) endHolder() time.Time {
	f, err := os.OpenFile(b.fifo, os.O_WRONLY, 0) // blocks until cat has it open
	benchutil.Check(err)
	t := time.Now()
	benchutil.Check(f.Close())
	return t
}

func (b *bench) holdRelease(argv []string) (acquire, release time.Duration) {
	cmd, acquire := b.holder(argv)
	t := b.endHolder()
	benchutil.Check(cmd.Wait())
	return acquire, time.Since(t)
}

// handoff: a holder holds, a waiter starts (want keys under prefix in
// etcd tell that it is there: lokt's waiter's holder evidence, which it
// creates before its first attempt; etcdctl's waiter key), sits for
// -settle, the holder's command ends, and the clock runs until the waiter's
// command prints.
func (b *bench) handoff(holdArgv, waitArgv []string, prefix string, want int64) time.Duration {
	h, _ := b.holder(holdArgv)
	w := b.command(waitArgv)
	out, started := pipeLines(w)
	w.Stderr = os.Stderr
	benchutil.Check(w.Start())
	started()
	var werr error
	wdone := make(chan struct{})
	go func() { werr = w.Wait(); close(wdone) }()
	for b.count(prefix) < want {
		select {
		case <-wdone:
			benchutil.Check(fmt.Errorf("%s ended before it waited: %v", strings.Join(waitArgv, " "), werr))
		case <-time.After(5 * time.Millisecond):
		}
	}
	time.Sleep(b.settle)
	t := b.endHolder()
	expectLine(out, "go")
	d := time.Since(t)
	benchutil.Check(h.Wait())
	<-wdone
	benchutil.Check(werr)
	return d
}

func (b *bench) count(prefix string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := b.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	benchutil.Check(err)
	return res.Count
}

// leaseLoss measures how long guard takes from its lease ending to saying
// "lock lost", and to --kill-on-lost having stopped its command (guard then
// exits), with LOKT_ETCD_LEASE_TTL=-ttl, in three ways of losing it:
//
//   - revoked: someone revokes the lease (etcdctl lease revoke); the clock
//     starts when the revoke has committed.
//   - guard stopped: guard is SIGSTOPped until etcd has removed its record
//     (the lease expired); the clock starts at SIGCONT. The time from
//     SIGSTOP to the record's removal is how long a holder that stopped
//     renewing blocks others.
//   - no quorum: all members (1-member) or two of three are SIGSTOPped; the
//     clock starts then. guard cannot renew and gives up once its lease's
//     TTL has passed since the last renewal it got an answer to.
func (b *bench) leaseLoss() {
	type result struct{ lost, stopped []time.Duration }
	kinds := []string{"revoked", "guard stopped", "no quorum"}
	res := map[string]*result{}
	var blocked []time.Duration
	for _, k := range kinds {
		res[k] = &result{}
	}
	for i := range b.loss {
		for j := range kinds {
			k := kinds[(i+j)%len(kinds)]
			lost, stopped, blk := b.lossTrial(k, fmt.Sprintf("loss%d", i*len(kinds)+j))
			res[k].lost = append(res[k].lost, lost)
			res[k].stopped = append(res[k].stopped, stopped)
			if blk > 0 {
				blocked = append(blocked, blk)
			}
		}
	}
	fmt.Printf("lease loss, LOKT_ETCD_LEASE_TTL=%s, %d trials each (median, min..max):\n", b.ttl, b.loss)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  how\tto \"lock lost\"\tto CMD stopped (guard exits)\t")
	for _, k := range kinds {
		r := res[k]
		fmt.Fprintf(w, "  %s\t%s\t%s\t\n", k, spread(r.lost), spread(r.stopped))
	}
	benchutil.Check(w.Flush())
	fmt.Printf("  a SIGSTOPped guard blocked others for (SIGSTOP to record removed): %s\n", spread(blocked))
}

func spread(ds []time.Duration) string {
	return fmt.Sprintf("%s (%s..%s)", benchutil.Ms(benchutil.Pct(ds, 50)), benchutil.Ms(benchutil.Pct(ds, 0)), benchutil.Ms(benchutil.Pct(ds, 100)))
}

func (b *bench) lossTrial(kind, name string) (lost, stopped, blocked time.Duration) {
	cmd := b.command([]string{b.lokt, "guard", name, "--kill-on-lost", "--", "sh", "-c", "echo held; exec sleep 600"})
	cmd.Env = append(cmd.Env, "LOKT_ETCD_LEASE_TTL="+b.ttl.String())
	out, started := pipeLines(cmd)
	errp, err := cmd.StderrPipe()
	benchutil.Check(err)
	lostAt := make(chan time.Time, 1)
	var stderr strings.Builder
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(errp)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "lock lost") {
				select {
				case lostAt <- time.Now():
				default:
				}
			}
			stderr.WriteString(sc.Text() + "\n")
		}
	}()
	benchutil.Check(cmd.Start())
	started()
	expectLine(out, "held")
	exited := make(chan time.Time, 1)
	go func() {
		<-scanned
		_ = cmd.Wait()
		exited <- time.Now()
	}()
	ctx := context.Background()
	var t0 time.Time
	switch kind {
	case "revoked":
		lease := b.holderLease(name)
		_, err := b.cli.Revoke(ctx, lease)
		benchutil.Check(err)
		t0 = time.Now()
	case "guard stopped":
		wctx, cancel := context.WithCancel(ctx)
		rec := "bench/locks/" + name
		g, err := b.cli.Get(ctx, rec)
		benchutil.Check(err)
		wch := b.cli.Watch(wctx, rec, clientv3.WithRev(g.Header.Revision+1), clientv3.WithFilterPut())
		benchutil.Check(cmd.Process.Signal(syscall.SIGSTOP))
		ts := time.Now()
		for w := range wch {
			benchutil.Check(w.Err())
			if len(w.Events) > 0 {
				break
			}
		}
		blocked = time.Since(ts)
		cancel()
		t0 = time.Now()
		benchutil.Check(cmd.Process.Signal(syscall.SIGCONT))
	case "no quorum":
		stop := b.c.Members
		if len(stop) > 1 {
			stop = stop[:2]
		}
		for _, m := range stop {
			m.Stop()
		}
		t0 = time.Now()
		select {
		case t := <-lostAt:
			lostAt <- t
		case <-time.After(b.ttl + 10*time.Second):
		}
		for _, m := range stop {
			m.Cont()
		}
		benchutil.Check(b.c.WaitHealthy(30 * time.Second))
	}
	var tl, te time.Time
	select {
	case tl = <-lostAt:
	case <-time.After(b.ttl + 20*time.Second):
		_ = cmd.Process.Kill()
		benchutil.Check(fmt.Errorf("%s: guard did not report the loss within %s; its stderr:\n%s", kind, b.ttl+20*time.Second, stderr.String()))
	}
	select {
	case te = <-exited:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		benchutil.Check(fmt.Errorf("%s: guard did not exit after the loss; its stderr:\n%s", kind, stderr.String()))
	}
	return tl.Sub(t0), te.Sub(t0), blocked
}

func (b *bench) holderLease(name string) clientv3.LeaseID {
	res, err := b.cli.Get(context.Background(), "bench/holders/"+name+"/", clientv3.WithPrefix())
	benchutil.Check(err)
	if len(res.Kvs) != 1 {
		benchutil.Check(fmt.Errorf("%d holder keys for %s, want 1", len(res.Kvs), name))
	}
	return clientv3.LeaseID(res.Kvs[0].Lease)
}

// pipeLines gives cmd's stdout as a pipe of our own (not exec's, which
// Wait closes), so Wait may run before everything is read. Call started
// once cmd has started.
func pipeLines(cmd *exec.Cmd) (out *bufio.Reader, started func()) {
	r, w, err := os.Pipe()
	benchutil.Check(err)
	cmd.Stdout = w
	benchutil.Defer(func() { _ = r.Close() })
	return bufio.NewReader(r), func() { _ = w.Close() }
}

// expectLine reads lines until want (etcdctl may print the lock's key
// first).
func expectLine(r *bufio.Reader, want string) {
	for {
		line, err := r.ReadString('\n')
		if strings.TrimSpace(line) == want {
			return
		}
		if errors.Is(err, io.EOF) {
			benchutil.Check(fmt.Errorf("expected %q, got end of output", want))
		}
		benchutil.Check(err)
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}
