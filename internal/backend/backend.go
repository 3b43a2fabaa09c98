// Package backend chooses where a lokt root lives: files in a directory (the
// default) or an etcd cluster named by a URL such as
//
//	etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/teams/ci
//
// Credentials never go in the URL: TLS files, user and password come from
// environment variables (see Env*), so they stay out of process listings
// and logs.
package backend

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lokt-dev/lokt/internal/etcdstore"
)

// The environment variables the etcd backend reads.
const (
	EnvBackend  = "LOKT_BACKEND"
	EnvCACert   = "LOKT_ETCD_CACERT"    // PEM file of the CA that signed the servers' certificates
	EnvCert     = "LOKT_ETCD_CERT"      // PEM client certificate (with EnvKey)
	EnvKey      = "LOKT_ETCD_KEY"       // PEM private key of EnvCert
	EnvUser     = "LOKT_ETCD_USER"      // etcd user name (with EnvPassword)
	EnvPassword = "LOKT_ETCD_PASSWORD"  //nolint:gosec // the variable's name, not a credential
	EnvTimeout  = "LOKT_ETCD_TIMEOUT"   // dial and per-request bound (Go duration)
	EnvLeaseTTL = "LOKT_ETCD_LEASE_TTL" // lease of holders and waiters (Go duration)
)

const prefixChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

// Spec is a parsed etcd backend URL.
type Spec struct {
	Raw       string
	Endpoints []string // HOST:PORT
	Prefix    string   // without surrounding slashes
}

// String is the URL in canonical form.
func (s *Spec) String() string {
	return "etcd://" + strings.Join(s.Endpoints, ",") + "/" + s.Prefix
}

// Parse reads a backend URL. An empty string means the file backend and
// gives nil.
func Parse(raw string) (*Spec, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("backend %q: %s; expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX]", raw, fmt.Sprintf(format, args...))
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, bad("no scheme")
	}
	if scheme != "etcd" {
		return nil, bad("unknown scheme %q (the only one is etcd; unset %s for the file backend)", scheme, EnvBackend)
	}
	if strings.ContainsAny(rest, "?#@") {
		return nil, bad("no query, fragment or user info allowed (credentials go in %s/%s)", EnvUser, EnvPassword)
	}
	hosts, prefix, _ := strings.Cut(rest, "/")
	sp := &Spec{Raw: raw, Prefix: strings.Trim(prefix, "/")}
	if sp.Prefix == "" {
		sp.Prefix = etcdstore.DefaultPrefix
	}
	for _, seg := range strings.Split(sp.Prefix, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return nil, bad("prefix %q has an empty, . or .. segment", sp.Prefix)
		}
		for _, c := range seg {
			if !strings.ContainsRune(prefixChars, c) {
				return nil, bad("prefix %q may use only A-Z a-z 0-9 . _ - and /", sp.Prefix)
			}
		}
	}
	if hosts == "" {
		return nil, bad("no endpoints")
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" {
			return nil, bad("endpoint %q is not HOST:PORT", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, bad("endpoint %q has no valid port", h)
		}
		sp.Endpoints = append(sp.Endpoints, h)
	}
	return sp, nil
}

// Config builds the client configuration for sp from the environment:
// TLS is on when any of the TLS variables is set. Unreadable or invalid
// files, a certificate without its key, a user without a password, and bad
// durations are errors.
func (sp *Spec) Config(getenv func(string) string) (etcdstore.Config, error) {
	cfg := etcdstore.Config{Endpoints: sp.Endpoints, Prefix: sp.Prefix}
	var err error
	if cfg.Timeout, err = envDuration(getenv, EnvTimeout); err != nil {
		return cfg, err
	}
	if cfg.LeaseTTL, err = envDuration(getenv, EnvLeaseTTL); err != nil {
		return cfg, err
	}
	if cfg.LeaseTTL != 0 && cfg.LeaseTTL < 2*time.Second {
		return cfg, fmt.Errorf("%s=%s is too short: etcd grants leases of 2s at least", EnvLeaseTTL, cfg.LeaseTTL)
	}
	cfg.Username, cfg.Password = getenv(EnvUser), getenv(EnvPassword)
	if (cfg.Username == "") != (cfg.Password == "") {
		return cfg, fmt.Errorf("set both %s and %s, or neither", EnvUser, EnvPassword)
	}
	ca, cert, key := getenv(EnvCACert), getenv(EnvCert), getenv(EnvKey)
	if ca == "" && cert == "" && key == "" {
		return cfg, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", EnvCACert, err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("%s: %s holds no PEM certificate", EnvCACert, ca)
		}
	}
	if (cert == "") != (key == "") {
		return cfg, fmt.Errorf("set both %s and %s, or neither", EnvCert, EnvKey)
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return cfg, fmt.Errorf("%s/%s: %w", EnvCert, EnvKey, err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	cfg.TLS = t
	return cfg, nil
}

func envDuration(getenv func(string) string, name string) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive duration such as 5s", name, v)
	}
	return d, nil
}

// Open connects to the cluster sp names.
func (sp *Spec) Open(getenv func(string) string) (*etcdstore.Store, error) {
	cfg, err := sp.Config(getenv)
	if err != nil {
		return nil, fmt.Errorf("etcd backend %s: %w", sp, err)
	}
	return etcdstore.Open(cfg)
}
