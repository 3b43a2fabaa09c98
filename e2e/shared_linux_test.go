package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lokt-dev/lokt/internal/testbin"
)

// osUser is an account created for one test.
type osUser struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// createUsers creates a group and the given accounts (the first n members
// of it), removing them all when the test ends. It skips the test, saying
// why, where accounts cannot be created.
func createUsers(t *testing.T, members, others int) (group string, gid uint32, users []osUser) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create OS users (useradd); run the e2e tests as root to cover shared roots")
	}
	for _, tool := range []string{"useradd", "userdel", "groupadd", "groupdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("cannot create OS users here: %v", err)
		}
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	group = "lkt" + suffix
	if out, err := exec.Command("groupadd", group).CombinedOutput(); err != nil {
		t.Skipf("cannot create a group here (groupadd: %v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("groupdel", group).Run() })
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.ParseUint(g.Gid, 10, 32)
	gid = uint32(n)
	for i := range members + others {
		name := "lkt" + suffix + strconv.Itoa(i)
		args := []string{"-M", "-N", "-s", "/bin/sh"}
		if i < members {
			args = append(args, "-G", group)
		}
		if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
			t.Skipf("cannot create users here (useradd: %v: %s)", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("userdel", name).Run() })
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		pgid, _ := strconv.ParseUint(u.Gid, 10, 32)
		ou := osUser{name: name, uid: uint32(uid), gid: uint32(pgid)}
		if i < members {
			ou.groups = []uint32{gid}
		}
		users = append(users, ou)
	}
	return group, gid, users
}

// TestSharedRootTwoUsers follows the documented shared-root set-up (a
// setgid root owned by a common group, mode 2770, umask 002) with two OS
// users created for the test: both take and release locks, every event of
// both lands in audit.log with no warning, and a user outside the group can
// read nothing.
func TestSharedRootTwoUsers(t *testing.T) {
	group, gid, users := createUsers(t, 2, 1)
	alice, bob, eve := users[0], users[1], users[2]

	// A directory every account can traverse, holding a copy of the binary
	// (the test's own temp dirs are private to root) and the root.
	base, err := os.MkdirTemp("", "lokt-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "lokt")
	copyFile(t, testbin.Path(t), bin, 0o755)
	root := filepath.Join(base, "locks")
	// install -d -m 2770 -g GROUP ROOT
	if out, err := exec.Command("install", "-d", "-m", "2770", "-g", group, root).CombinedOutput(); err != nil {
		t.Fatalf("install -d: %v: %s", err, out)
	}

	as := func(u osUser, want int, args ...string) result {
		t.Helper()
		cmd := exec.Command("/bin/sh", append([]string{"-c", `umask 002; exec "$0" "$@"`, bin}, args...)...)
		cmd.Dir = base
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + base, "LOKT_ROOT=" + root, "GORACE=atexit_sleep_ms=0 halt_on_error=1"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: u.groups}}
		r := wait(t, cmd)
		if r.code != want {
			t.Fatalf("%s: lokt %v: exit %d, want %d\nstdout: %s\nstderr: %s", u.name, args, r.code, want, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, "warning") {
			t.Fatalf("%s: lokt %v warned: %s", u.name, args, r.stderr)
		}
		return r
	}
	as(alice, 0, "lock", "deploy", "--pid", "0", "--ttl", "1m")
	as(bob, 2, "lock", "deploy", "--pid", "0", "--ttl", "1m")
	as(bob, 0, "guard", "build", "--", "true")
	as(bob, 0, "lock", "deploy", "--pid", "0", "--ttl", "1m", "--conflict-exit-code", "0", "-q") // held: 0, silently
	as(alice, 0, "unlock", "deploy")
	as(bob, 0, "lock", "deploy", "--pid", "0", "--ttl", "1m")
	as(bob, 0, "unlock", "deploy")
	as(alice, 0, "freeze", "build", "--ttl", "1m")
	as(bob, 0, "unfreeze", "build")
	doc := as(bob, 0, "doctor")
	if !strings.Contains(doc.stdout, "shared with group "+group) {
		t.Errorf("doctor does not recognise the shared root:\n%s", doc.stdout)
	}

	// Every member's events are in the log.
	byOwner := map[string][]string{}
	f, err := os.Open(filepath.Join(root, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct{ Event, Owner string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if rec.Event != "renew" { // guard's own bookkeeping, not the point here
			byOwner[rec.Owner] = append(byOwner[rec.Owner], rec.Event)
		}
	}
	wantEvents := map[string]string{
		alice.name: "acquire release freeze",
		bob.name:   "deny acquire release deny acquire release unfreeze",
	}
	for who, want := range wantEvents {
		if got := strings.Join(byOwner[who], " "); got != want {
			t.Errorf("audit events of %s: %q, want %q", who, got, want)
		}
	}
	st, err := os.Stat(filepath.Join(root, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); st.Mode().Perm() != 0o660 || sys.Gid != gid {
		t.Errorf("audit.log mode %04o gid %d, want 0660 and group %s (%d)", st.Mode().Perm(), sys.Gid, group, gid)
	}

	// A non-member reads nothing: not the locks, not the log.
	cmd := exec.Command(bin, "status")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + base, "LOKT_ROOT=" + root}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: eve.uid, Gid: eve.gid}}
	if r := wait(t, cmd); r.code == 0 {
		t.Errorf("a non-member listed the shared root's locks:\n%s", r.stdout)
	}
	cmd = exec.Command("cat", filepath.Join(root, "audit.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: eve.uid, Gid: eve.gid}}
	if r := wait(t, cmd); r.code == 0 {
		t.Errorf("a non-member read audit.log")
	}
}

func copyFile(t *testing.T, from, to string, perm os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
