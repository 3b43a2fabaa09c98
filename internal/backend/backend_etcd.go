//go:build !lokt_slim

package backend

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/lokt-dev/lokt/internal/etcdstore"
)

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
