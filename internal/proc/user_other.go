//go:build !unix

package proc

// UserName has no passwd file to read here: the caller asks os/user.
func UserName(int) (string, bool) { return "", false }
