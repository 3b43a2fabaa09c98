package filestore

import (
	"context"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"

	"github.com/lokt-dev/lokt/store"
)

// Watch implements store.Store with inotify/kqueue through fsnotify. It
// signals only the removal of a watched record: events on other names, and
// replacements of the record itself, are filtered out here, so a waiter is
// woken only when its lock may have become free.
//
// fsnotify watches paths. If a namespace directory is swapped for a symlink
// after Open, a watch may see events of the link's target; an event only
// makes the waiter retry Update, which works through the descriptors Open
// pinned and refuses the swapped directory, so no event can make lokt read
// or write outside the root.
//
// Every Watch of the process shares one watcher, which is never closed.
// Closing an inotify instance blocks for an RCU grace period (10-20ms),
// and a child forked while such a close is pending inherits the last
// reference and pays that wait in its exec: a guard that had just waited
// would start its command late. With one long-lived instance the cost is
// paid once, at process exit, after the lock work is done; it also keeps a
// process with many waiters within the per-user inotify instance limit.
func (s *Store) Watch(ctx context.Context, keys ...store.Key) (<-chan struct{}, error) {
	return s.watch(ctx, false, keys)
}

// WatchChanges implements store.ChangeWatcher: like Watch, but a record
// written in place (renamed over) wakes the subscriber too.
func (s *Store) WatchChanges(ctx context.Context, keys ...store.Key) (<-chan struct{}, error) {
	return s.watch(ctx, true, keys)
}

func (s *Store) watch(ctx context.Context, writes bool, keys []store.Key) (<-chan struct{}, error) {
	var dirs []string
	want := map[string]bool{}
	for _, k := range keys {
		dir := filepath.Join(s.root, string(k.NS))
		dirs = append(dirs, dir)
		if k.Name == "" {
			want[filepath.Join(dir, anyRecord)] = true
			continue
		}
		want[filepath.Join(dir, k.Name+recordExt)] = true
	}
	sub, err := watchers.subscribe(dirs, want, writes)
	if err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		watchers.unsubscribe(sub)
	}()
	return sub.ch, nil
}

// MultiHolder implements store.MultiHolder: a version 2 record is one file
// like any other, changed under the name's kernel lock.
func (s *Store) MultiHolder() {}

// anyRecord stands in want for every record of a directory (a Key with no
// Name, for lokt status --watch).
const anyRecord = "*"

// wants says whether an event on path concerns s. A subscriber to every
// change also sees waiters join and leave the line of a lock it watches
// (their descriptions come and go beside the record).
func (s *subscription) wants(path string) bool {
	if s.want[path] {
		return true
	}
	dir, base := filepath.Split(path)
	dir = filepath.Clean(dir)
	if s.writes {
		if name, _, ok := parseDotted(base, waitingExt); ok {
			return s.want[filepath.Join(dir, anyRecord)] || s.want[filepath.Join(dir, name+recordExt)]
		}
	}
	return s.want[filepath.Join(dir, anyRecord)] && strings.HasSuffix(base, recordExt) && !strings.HasPrefix(base, ".")
}

// watchers is the process's shared watcher, started by the first Watch.
var watchers sharedWatcher

type sharedWatcher struct {
	mu   sync.Mutex
	w    *fsnotify.Watcher
	dirs map[string]int // watched directory -> subscriptions using it
	subs map[*subscription]bool
}

type subscription struct {
	dirs []string
	want map[string]bool // record paths that wake this subscriber
	ch   chan struct{}   // buffered 1: wake-ups coalesce
	// writes: woken by a record written in place too, not only removed.
	writes bool
}

func (sw *sharedWatcher) subscribe(dirs []string, want map[string]bool, writes bool) (*subscription, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.w == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return nil, err
		}
		sw.w, sw.dirs, sw.subs = w, map[string]int{}, map[*subscription]bool{}
		go sw.dispatch(w)
	}
	sub := &subscription{want: want, ch: make(chan struct{}, 1), writes: writes}
	for _, d := range dirs {
		if sw.dirs[d] == 0 {
			if err := sw.w.Add(d); err != nil {
				sw.release(sub.dirs)
				return nil, err
			}
		}
		sw.dirs[d]++
		sub.dirs = append(sub.dirs, d)
	}
	sw.subs[sub] = true
	return sub, nil
}

func (sw *sharedWatcher) unsubscribe(sub *subscription) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	delete(sw.subs, sub)
	sw.release(sub.dirs)
}

// release drops directories nobody watches any more. Removing a watch is
// cheap; only closing the instance is not.
func (sw *sharedWatcher) release(dirs []string) {
	for _, d := range dirs {
		if sw.dirs[d]--; sw.dirs[d] <= 0 {
			delete(sw.dirs, d)
			_ = sw.w.Remove(d)
		}
	}
}

func (sw *sharedWatcher) dispatch(w *fsnotify.Watcher) {
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			// Only a removal can free an exclusive lock or lift a freeze; a
			// record replaced in place (acquired, renewed, refreshed) still
			// blocks, so waking its waiters would only make them all
			// recheck. Records are replaced by a rename, which arrives as a
			// Create of the record's name.
			removed := ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
			written := ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write)
			if !removed && !written {
				continue
			}
			sw.wake(func(s *subscription) bool { return (removed || s.writes) && s.wants(ev.Name) })
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
			// Events may have been dropped (queue overflow): everyone rechecks.
			sw.wake(func(*subscription) bool { return true })
		}
	}
}

func (sw *sharedWatcher) wake(match func(*subscription) bool) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for s := range sw.subs {
		if match(s) {
			select {
			case s.ch <- struct{}{}:
			default:
			}
		}
	}
}
