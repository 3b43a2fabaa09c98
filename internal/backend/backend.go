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
	"fmt"
	"net"
	"strconv"
	"strings"
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

// DefaultPrefix is where records live when the URL names no prefix.
const DefaultPrefix = "lokt"

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
		sp.Prefix = DefaultPrefix
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
