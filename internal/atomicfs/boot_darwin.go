package atomicfs

import (
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The boot time, to the microsecond, tells boots apart. If the clock is
// stepped the kernel shifts it, which only makes lokt distrust its unsynced
// counter line and skip to the durable mark.
var bootOnce = sync.OnceValue(func() string {
	tv, err := unix.SysctlTimeval("kern.boottime")
	if err != nil {
		return ""
	}
	return fitBoot("boot-" + strconv.FormatInt(tv.Sec, 10) + "." + strconv.FormatInt(int64(tv.Usec), 10))
})
