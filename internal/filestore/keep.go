package filestore

import (
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

// Forget implements store.Keeper. It also sweeps the name's evidence files
// that nobody holds (left by waiters killed before they acquired). A file
// is only ever removed once no process holds it, and evidence is created
// under a temporary name and locked before it gets its final one, so no
// holder's evidence can be removed under it.
func (s *Store) Forget(_ context.Context, k store.Key, id string) error {
	dir, _, err := s.keepFile(k, id)
	if err != nil {
		return err
	}
	entries, err := dir.ReadDirNames()
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if name, _, ok := parseKeepName(e); !ok || name != k.Name {
			continue
		}
		if held, err := dir.IsHeld(e); err != nil || held {
			errs = append(errs, unsafe(err))
			continue
		}
		if err := dir.Remove(e, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// parseKeepName splits ".NAME.ID.hold"; names may contain dots, ids do not.
func parseKeepName(file string) (name, id string, ok bool) {
	rest, found := strings.CutSuffix(strings.TrimPrefix(file, "."), keepExt)
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
