//go:build unix

package proc

import (
	"os"
	"os/user"
	"strconv"
	"testing"
)

func TestPasswdName(t *testing.T) {
	passwd := []byte(`# comment
+nis:x:1000:1000::/:/bin/sh
short:x:1000
badgid:x:1000:g::/home/b:/bin/sh
:x:1000:1000::/:/bin/sh
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
bob:x:1000:1000::/home/bob:/bin/sh
carol:x:10001:1000::/home/carol:/bin/sh
`)
	for uid, want := range map[string]string{"1000": "alice", "10001": "carol", "100": ""} {
		got, ok := passwdName(passwd, uid)
		if got != want || ok != (want != "") {
			t.Errorf("uid %s: got %q, %v; want %q", uid, got, ok, want)
		}
	}
}

// Where os/user reads /etc/passwd too, both give the same name.
func TestUserNameMatchesOSUser(t *testing.T) {
	name, ok := UserName(os.Getuid())
	if !ok {
		t.Skip("this user is not in /etc/passwd")
	}
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		t.Skip(err)
	}
	if u.Username != name {
		t.Errorf("UserName = %q, os/user says %q", name, u.Username)
	}
}
