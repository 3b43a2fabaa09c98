//go:build !unix

package etcdtest

import "os"

// Windows has no stop and continue signals: Stop and Cont do nothing there.
var sigStop, sigCont os.Signal

func resume(*os.Process) {}
