// Package etcdtest starts real etcd members from the installed etcd binary
// for tests: one member or a small cluster on free loopback ports, with data
// directories the caller owns. Members are stopped with SIGKILL (etcd takes
// seconds to stop on SIGTERM) and waited for, so a member can be restarted
// on the same data directory.
package etcdtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binary is the etcd server to run: $LOKT_TEST_ETCD, else etcd on $PATH,
// else /usr/bin/etcd. Empty when there is none.
func Binary() string {
	if p := os.Getenv("LOKT_TEST_ETCD"); p != "" {
		return p
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	return ""
}

// SkipMessage is what tests say when they skip for want of etcd.
const SkipMessage = "no etcd binary (install it: apt-get install -y etcd-server; or set LOKT_TEST_ETCD): skipping the etcd tests"

// Member is one etcd server process.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	dir       string
	args      []string
	logPath   string
	httpc     *http.Client // for health checks: TLS-aware on an https member

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Cluster is a set of members started together.
type Cluster struct {
	Members []*Member
	// TLS is the client side of a cluster started by StartTLS (nil on a
	// plain one): the test CA and a client certificate.
	TLS *tls.Config
}

// Endpoints are the members' client addresses as HOST:PORT.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.Endpoint())
	}
	return eps
}

// Backend is the LOKT_BACKEND value for this cluster under prefix.
func (c *Cluster) Backend(prefix string) string {
	return "etcd://" + strings.Join(c.Endpoints(), ",") + "/" + strings.TrimPrefix(prefix, "/")
}

// Endpoint is the member's client address as HOST:PORT.
func (m *Member) Endpoint() string {
	_, hostPort, _ := strings.Cut(m.ClientURL, "://")
	return hostPort
}

// Start starts an n-member cluster for the test (skipping it when there is
// no etcd binary) and kills it when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	if Binary() == "" {
		t.Skip(SkipMessage)
	}
	c, err := New(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	return c
}

// New starts an n-member cluster with data under dir and waits until every
// member answers its health check. Heartbeat and election timeouts are short
// so that a killed leader is replaced in well under a second.
func New(dir string, n int) (*Cluster, error) { return newCluster(dir, n, nil, nil) }

// newCluster is New with client TLS: serverArgs are the TLS flags of every
// member, clientTLS the configuration health checks use. Peers talk plain
// http on loopback either way.
func newCluster(dir string, n int, serverArgs []string, clientTLS *tls.Config) (*Cluster, error) {
	bin := Binary()
	if bin == "" {
		return nil, errors.New(SkipMessage)
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	httpc := &http.Client{Timeout: time.Second}
	if clientTLS != nil {
		scheme = "https"
		httpc.Transport = &http.Transport{TLSClientConfig: clientTLS}
	}
	c := &Cluster{TLS: clientTLS}
	var initial []string
	for i := range n {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			dir:       filepath.Join(dir, fmt.Sprintf("m%d", i)),
			httpc:     httpc,
		}
		m.logPath = m.dir + ".log"
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name, "--data-dir", m.dir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", filepath.Base(dir),
			"--heartbeat-interval", "20", "--election-timeout", "200",
			"--logger", "zap", "--log-outputs", m.logPath, "--log-level", "error",
		}
		m.args = append(m.args, serverArgs...)
		if err := m.start(bin); err != nil {
			c.Kill()
			return nil, err
		}
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

func (m *Member) start(bin string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(bin, m.args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd member %s: %w", m.Name, err)
	}
	m.cmd = cmd
	m.done = make(chan struct{})
	done := m.done
	go func() { _ = cmd.Wait(); close(done) }()
	return nil
}

// WaitHealthy waits until every running member reports itself healthy
// (which needs a leader, so quorum) or gives up after limit.
func (c *Cluster) WaitHealthy(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for _, m := range c.Members {
		if err := m.waitHealthy(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (m *Member) waitHealthy(ctx context.Context) error {
	for {
		m.mu.Lock()
		done := m.done
		m.mu.Unlock()
		select {
		case <-done:
			log, _ := os.ReadFile(m.logPath)
			return fmt.Errorf("etcd member %s exited while starting: %s", m.Name, tail(log))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/health", nil)
		if resp, err := m.httpc.Do(req); err == nil {
			var b [64]byte
			k, _ := resp.Body.Read(b[:])
			_ = resp.Body.Close()
			if strings.Contains(string(b[:k]), `"true"`) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(m.logPath)
			return fmt.Errorf("etcd member %s not healthy in time: %s", m.Name, tail(log))
		case <-time.After(20 * time.Millisecond): // etcd has no readiness event to await
		}
	}
}

// Kill SIGKILLs every member and waits for each to exit.
func (c *Cluster) Kill() {
	for _, m := range c.Members {
		m.Kill()
	}
}

// Kill SIGKILLs the member and waits for it to exit. A stopped member is
// resumed first so that it can die.
func (m *Member) Kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	resume(cmd.Process)
	<-done
}

// Restart starts a killed member again on its data directory.
func (m *Member) Restart() error {
	m.Kill()
	for i, a := range m.args {
		if a == "--initial-cluster-state" {
			m.args[i+1] = "existing"
		}
	}
	return m.start(Binary())
}

// Stop SIGSTOPs the member (it keeps its sockets but answers nothing).
func (m *Member) Stop() { m.signal(sigStop) }

// Cont resumes a stopped member.
func (m *Member) Cont() { m.signal(sigCont) }

func (m *Member) signal(sig os.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && sig != nil {
		_ = m.cmd.Process.Signal(sig)
	}
}

// PID is the member's process id.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd.Process.Pid
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("no free loopback port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Leader returns the member that is the cluster's leader now, asking the
// running members in turn.
func (c *Cluster) Leader() (*Member, error) {
	cli, err := c.Client()
	if err != nil {
		return nil, err
	}
	defer func() { _ = cli.Close() }()
	var last error
	for _, m := range c.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, m.Endpoint())
		cancel()
		if err != nil {
			last = err
			continue
		}
		if st.Leader == st.Header.MemberId {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no member says it leads: %v", last)
}

// Client is a client of the running members (over TLS on a TLS cluster),
// for tests that look at etcd's own view: keys, leases, revisions.
func (c *Cluster) Client() (*clientv3.Client, error) {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL)
	}
	return clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, TLS: c.TLS, Logger: zap.NewNop()})
}

// EnableAuth creates user (with the root role) and turns authentication on.
func (c *Cluster) EnableAuth(user, password string) error {
	cli, err := c.Client()
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.UserAdd(ctx, user, password); err != nil {
		return err
	}
	if _, err := cli.RoleAdd(ctx, "root"); err != nil {
		return err
	}
	if _, err := cli.UserGrantRole(ctx, user, "root"); err != nil {
		return err
	}
	_, err = cli.AuthEnable(ctx)
	return err
}
