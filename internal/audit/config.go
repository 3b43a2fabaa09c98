package audit

import (
	"fmt"
	"strconv"
	"strings"
)

// Environment variables that tune rotation.
const (
	EnvMaxBytes = "LOKT_AUDIT_MAX_BYTES"
	EnvKeep     = "LOKT_AUDIT_KEEP"
)

// Rotation defaults: 10 MiB per file and five rotated generations keep the
// last ~60 MiB, months of activity for a busy repository.
const (
	DefaultMaxBytes = 10 << 20
	DefaultKeep     = 5
)

// Config tunes rotation.
type Config struct {
	// MaxBytes is the size at which audit.log is rotated; 0 never rotates.
	MaxBytes int64
	// Keep is how many rotated generations are kept (at least 1).
	Keep int
}

// DefaultConfig is the rotation used when the environment says nothing.
func DefaultConfig() Config { return Config{MaxBytes: DefaultMaxBytes, Keep: DefaultKeep} }

// ConfigFromEnv reads LOKT_AUDIT_MAX_BYTES (bytes, or with a K, M or G
// suffix in powers of 1024; 0 disables rotation) and LOKT_AUDIT_KEEP. An
// invalid value is reported in err and its default used, so a typo never
// stops the log.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	var errs []string
	if v := strings.TrimSpace(getenv(EnvMaxBytes)); v != "" {
		n, err := parseSize(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q: %v (using %d)", EnvMaxBytes, v, err, cfg.MaxBytes))
		} else {
			cfg.MaxBytes = n
		}
	}
	if v := strings.TrimSpace(getenv(EnvKeep)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Sprintf("%s=%q: want a whole number of at least 1 (using %d)", EnvKeep, v, cfg.Keep))
		} else {
			cfg.Keep = n
		}
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("invalid audit rotation setting: %s", strings.Join(errs, "; "))
	}
	return cfg, nil
}

// parseSize reads "1048576", "512K", "10M", "1G" (also "10MiB", "10MB":
// all in powers of 1024, which is what people mean for log sizes).
func parseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "KMGiBkmgb")
	unit := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "b"))
	unit = strings.TrimSuffix(unit, "I")
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a size in bytes such as 10485760 or 10M")
	}
	shift := 0
	switch unit {
	case "":
	case "K":
		shift = 10
	case "M":
		shift = 20
	case "G":
		shift = 30
	default:
		return 0, fmt.Errorf("unknown size unit %q; use K, M or G", s[len(num):])
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("size too large")
	}
	return n << shift, nil
}
