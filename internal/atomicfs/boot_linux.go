package atomicfs

import (
	"sync"

	"github.com/lokt-dev/lokt/internal/proc"
)

// The kernel makes a random boot id at every boot; proc reads it once for
// the start tokens too.
var bootOnce = sync.OnceValue(func() string {
	id, ok := proc.BootID()
	if !ok {
		return ""
	}
	return fitBoot(id)
})
