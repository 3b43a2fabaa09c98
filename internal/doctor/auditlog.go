package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/lokt-dev/lokt/internal/atomicfs"
	"github.com/lokt-dev/lokt/internal/audit"
	"github.com/lokt-dev/lokt/internal/proc"
)

// auditLog checks that the audit log is a private, appendable regular file,
// and reports its size and rotation settings.
func (d *doctor) auditLog() verdict {
	path := filepath.Join(d.loc.Dir, audit.FileName)
	cfg, cfgErr := audit.ConfigFromEnv(d.opts.Getenv)
	rotation := fmt.Sprintf("rotates at %s, keeps %d", size(cfg.MaxBytes), cfg.Keep)
	if cfg.MaxBytes == 0 {
		rotation = "rotation disabled (" + audit.EnvMaxBytes + "=0)"
	}
	if d.rootBroken {
		return d.skipped()
	}
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d.withConfig(ok("no audit log yet; the first lock operation creates %s with mode %04o, less the umask (%s)", path, audit.CreateMode(d.loc.Dir), rotation), cfgErr)
	case err != nil:
		return fail(fmt.Sprintf("cannot examine %s: %v", path, err), "check the lock root's permissions")
	case st.Mode()&fs.ModeSymlink != 0:
		return fail(fmt.Sprintf("%s is a symlink; lokt never writes the audit log through one, so no event is being recorded", path),
			"remove the symlink (lokt then creates a real audit.log): rm "+path)
	case !st.Mode().IsRegular():
		return fail(fmt.Sprintf("%s is a %s, not a regular file; no event is being recorded", path, atomicfs.Kind(st.Mode())),
			"move it away; lokt then creates a real audit.log")
	}
	files, _ := audit.Files(d.loc.Dir)
	var total int64
	var exposed []string
	for _, f := range files {
		fst, err := os.Lstat(f)
		if err != nil {
			continue
		}
		total += fst.Size()
		if modeBitsMeaningful && fst.Mode().Perm()&0o006 != 0 {
			exposed = append(exposed, fmt.Sprintf("%s (%04o)", f, fst.Mode().Perm()))
		}
	}
	summary := fmt.Sprintf("%s: %s in %d file(s), %s", path, size(total), len(files), rotation)
	if len(exposed) > 0 {
		paths := make([]string, len(exposed))
		for i, e := range exposed {
			paths[i] = e[:strings.LastIndex(e, " (")]
		}
		return warn(fmt.Sprintf("readable or writable by other users, so anyone on this machine can read who locked what, or forge entries: %s (%s)", list(exposed, 3), summary),
			"chmod 600 "+strings.Join(paths, " "))
	}
	// Opening for append without writing changes nothing, not even mtime.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return warn(fmt.Sprintf("this user cannot append to %s (%v): its lock operations succeed but are not recorded", path, err),
			"if several users share this root, set it up as docs/protocol.md#shared-roots says (setgid group root, umask 002), then give the group write access to the log: chgrp GROUP "+path+" && chmod 660 "+path)
	}
	_ = f.Close()
	if !audit.RotationSupported && cfg.MaxBytes > 0 && total > cfg.MaxBytes {
		return warn(fmt.Sprintf("%s; the audit log is not rotated on %s and has grown past the limit", summary, runtime.GOOS),
			"archive or truncate it by hand while no lokt process runs")
	}
	return d.withConfig(ok("%s, not readable by other users, appendable by this user", summary), cfgErr)
}

// withConfig turns an ok verdict into a warning about bad rotation
// settings.
func (d *doctor) withConfig(v verdict, cfgErr error) verdict {
	if cfgErr == nil || v.status != OK {
		return v
	}
	return warn(fmt.Sprintf("%s; %v", v.message, cfgErr), "fix "+audit.EnvMaxBytes+" / "+audit.EnvKeep)
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// platform reports what this platform cannot check.
func (d *doctor) platform() verdict {
	host := proc.Hostname()
	if host == "unknown-host" {
		return warn("this host's name cannot be read, so lokt cannot tell its own holders from other hosts': holders are judged by TTL only",
			"fix the host name (hostnamectl), and give locks a --ttl")
	}
	if !proc.StartSupported {
		return warn(fmt.Sprintf("on %s lokt cannot read process start times: a lock whose holder died is broken only if its pid is not reused, and a lock without a TTL can outlive its holder (host %s)", runtime.GOOS, host),
			"give locks a --ttl (guard renews it while the command runs)")
	}
	return ok("on %s lokt checks holder processes by pid and start time, so a dead holder is detected even if its pid is reused; this host is %q, and holders on other hosts are judged by TTL only", runtime.GOOS, host)
}
