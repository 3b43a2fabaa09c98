package atomicfs

import (
	"os"
	"strings"
	"sync"
)

// The kernel makes a random boot id at every boot.
var bootOnce = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return ""
	}
	return fitBoot(id)
})
