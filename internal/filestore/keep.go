package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/lokt-dev/lokt/internal/atomicfs"
	"github.com/lokt-dev/lokt/store"
)

// keepExt ends the name of a holder's evidence file, ROOT/locks/.NAME.ID.hold:
// one per acquisition, so a process left over from an earlier holder can
// never pass for evidence of a later one.
const keepExt = ".hold"

// keepFile is the open locks/ directory and the name of the evidence file
// of acquisition id of k in it.
func (s *Store) keepFile(k store.Key, id string) (*atomicfs.Dir, string, error) {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return nil, "", fmt.Errorf("invalid acquisition id %q", id)
	}
	dir, err := s.nsDir(store.Locks)
	if err != nil {
		return nil, "", err
	}
	return dir, "." + k.Name + "." + id + keepExt, nil
}

// Keep implements store.Keeper: a shared flock(2) on a new file, which the
// holder's child processes inherit.
func (s *Store) Keep(_ context.Context, k store.Key, id string) (store.Kept, error) {
	dir, name, err := s.keepFile(k, id)
	if err != nil {
		return nil, err
	}
	f, err := dir.CreateHeld(name, filePerm)
	if err != nil {
		return nil, unsafe(err)
	}
	return &kept{f: f}, nil
}

// Alive implements store.Keeper.
func (s *Store) Alive(_ context.Context, k store.Key, id string) (bool, error) {
	dir, name, err := s.keepFile(k, id)
	if err != nil {
		return false, err
	}
	held, err := dir.IsHeld(name)
	return held, unsafe(err)
}

// Forget implements store.Keeper: it removes the acquisition's own file,
// once no process holds it, by its exact name, at the same cost however
// many locks the root has. Files of acquisitions that never completed (a
// waiter killed before its turn) hold nothing; Sweep removes them.
func (s *Store) Forget(_ context.Context, k store.Key, id string) error {
	dir, name, err := s.keepFile(k, id)
	if err != nil {
		return err
	}
	_, err = removeUnheld(dir, name)
	return err
}

// Sweep removes every evidence file of the root that nobody holds: files of
// acquisitions that never completed, and descriptions of waiters that
// died (Announce). A file is only removed once no process
// holds it, and evidence is locked before it gets its final name, so no
// holder's evidence can be removed under it. It returns the names removed.
//
// Unheld is not enough for the evidence of a name's current record: once
// guard is gone and only its command's process group runs, that file still
// carries the note (the group) the record is judged by. Each file is
// checked against its name's record under the name's guard lock, so no
// acquisition can slip in between; a record that cannot be read keeps all
// of its name's files.
func (s *Store) Sweep(ctx context.Context) ([]string, error) {
	dir, entries, err := s.entries(store.Locks)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if _, _, ok := parseDotted(e, waitingExt); ok {
			// A waiter's description: no record names it, and a live
			// waiter holds it until it has removed it.
			if gone, err := removeUnheld(dir, e); err != nil {
				errs = append(errs, err)
			} else if gone {
				removed = append(removed, e)
			}
			continue
		}
		name, id, ok := parseDotted(e, keepExt)
		if !ok {
			continue
		}
		gone, err := s.sweepOne(ctx, dir, store.Key{NS: store.Locks, Name: name}, id, e)
		if err != nil {
			errs = append(errs, err)
		} else if gone {
			removed = append(removed, e)
		}
	}
	return removed, errors.Join(errs...)
}

// sweepOne removes evidence file (of acquisition id of k) unless it is
// held or the current record's.
func (s *Store) sweepOne(ctx context.Context, dir *atomicfs.Dir, k store.Key, id, file string) (bool, error) {
	g, err := dir.LockGuard(guardName(k), filePerm)
	if err != nil {
		return false, unsafe(err)
	}
	defer func() { _ = g.Unlock() }()
	data, err := s.Read(ctx, k)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, nil
	default:
		// The record names its holders' acquisitions (one lock_id, or one
		// per holder of a version 2 record): evidence it names is kept,
		// held or not, since guard notes its command's tree there. The id
		// is 128 random bits, so a match anywhere in the record is a
		// reference.
		if bytes.Contains(data, []byte(id)) {
			return false, nil
		}
	}
	return removeUnheld(dir, file)
}

// removeUnheld removes the evidence file name in dir unless a process
// holds it.
func removeUnheld(dir *atomicfs.Dir, name string) (bool, error) {
	held, err := dir.IsHeld(name)
	if err != nil || held {
		return false, unsafe(err)
	}
	if err := dir.Remove(name, false); err != nil {
		return false, ignoreNotExist(err)
	}
	return true, nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// parseDotted splits ".NAME.ID" + ext; names may contain dots, ids do not.
func parseDotted(file, ext string) (name, id string, ok bool) {
	rest, found := strings.CutSuffix(strings.TrimPrefix(file, "."), ext)
	if !found || !strings.HasPrefix(file, ".") {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// ReadNote implements store.NoteReader.
func (s *Store) ReadNote(_ context.Context, k store.Key, id string) ([]byte, error) {
	dir, name, err := s.keepFile(k, id)
	if err != nil {
		return nil, err
	}
	data, err := dir.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, unsafe(err)
}

type kept struct{ f *os.File }

// Note implements store.Noter: the note is the evidence file's content,
// read only once nobody holds the file, so no reader sees it half written.
func (k *kept) Note(data []byte) error {
	_, err := k.f.WriteAt(data, 0)
	return err
}

func (k *kept) Files() []*os.File     { return []*os.File{k.f} }
func (k *kept) Done() <-chan struct{} { return nil }
func (k *kept) Close() error          { return k.f.Close() }
