package lokt

import (
	"context"
	"time"

	"github.com/lokt-dev/lokt/internal/lockfile"
	"github.com/lokt-dev/lokt/store"
)

// changesPoll is how often Changes looks when the store cannot report
// changes itself.
const changesPoll = time.Second

// Changes returns a channel that receives a value (coalesced) after each
// change of name's lock or freeze, or of any lock or freeze when name is
// "", until ctx ends. It is driven by the store's change notification
// (store.ChangeWatcher); a store without one is looked at every second.
// A value may also arrive for a change that is no longer visible by the
// time the caller reads.
func (r *Root) Changes(ctx context.Context, name string) (<-chan struct{}, error) {
	if name != "" {
		if err := lockfile.ValidateName(name); err != nil {
			return nil, err
		}
	}
	keys := []store.Key{{NS: store.Locks, Name: name}, {NS: store.Freezes, Name: name}}
	if cw, ok := r.store.(store.ChangeWatcher); ok {
		return cw.WatchChanges(ctx, keys...)
	}
	ch := make(chan struct{}, 1)
	go func() {
		t := time.NewTicker(changesPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch, nil
}
