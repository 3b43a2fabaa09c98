//go:build unix

package proc

import (
	"bytes"
	"strconv"
)

// UserName is the name /etc/passwd gives uid, as os/user finds it without
// cgo, read without os/user's start-up of the runtime's network poller. ok
// is false when passwd has no such entry (a directory service user, say):
// the caller then asks os/user.
func UserName(uid int) (name string, ok bool) {
	b, err := readSmall("/etc/passwd")
	if err != nil {
		return "", false
	}
	return passwdName(b, strconv.Itoa(uid))
}

// passwdName finds the first entry name:password:uid:gid:gecos:home:shell
// for uid. Comments, NIS "+"/"-" lines and malformed lines are skipped, as
// os/user does.
func passwdName(b []byte, uid string) (string, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := bytes.SplitN(line, []byte(":"), 7)
		if len(f) < 7 || string(f[2]) != uid || len(f[0]) == 0 {
			continue
		}
		if _, err := strconv.Atoi(string(f[3])); err != nil {
			continue
		}
		return string(f[0]), true
	}
	return "", false
}
