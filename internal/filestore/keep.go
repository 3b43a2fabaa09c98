package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lokt-dev/lokt/internal/atomicfs"
	"github.com/lokt-dev/lokt/store"
)

// keepExt ends the name of a holder's evidence file, ROOT/locks/.NAME.ID.hold:
// one per acquisition, so a process left over from an earlier holder can
// never pass for evidence of a later one.
const keepExt = ".hold"

func (s *Store) keepPath(k store.Key, id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return "", fmt.Errorf("invalid acquisition id %q", id)
	}
	return filepath.Join(s.root, string(store.Locks), "."+k.Name+"."+id+keepExt), nil
}

// Keep implements store.Keeper: a shared flock(2) on a new file, which the
// holder's child processes inherit.
func (s *Store) Keep(_ context.Context, k store.Key, id string) (store.Kept, error) {
	path, err := s.keepPath(k, id)
	if err != nil {
		return nil, err
	}
	f, err := atomicfs.CreateHeld(path, filePerm)
	if err != nil {
		return nil, unsafe(err)
	}
	return &kept{f: f}, nil
}

// Alive implements store.Keeper.
func (s *Store) Alive(_ context.Context, k store.Key, id string) (bool, error) {
	path, err := s.keepPath(k, id)
	if err != nil {
		return false, err
	}
	held, err := atomicfs.IsHeld(path)
	return held, unsafe(err)
}

// Forget implements store.Keeper. It also sweeps the name's evidence files
// that nobody holds (left by waiters killed before they acquired). A file
// is only ever removed once no process holds it, and evidence is created
// under a temporary name and locked before it gets its final one, so no
// holder's evidence can be removed under it.
//
// Unheld is not enough for the evidence of the name's current record: once
// guard is gone and only its command's process group runs, that file still
// carries the note (the group) the record is judged by. The sweep reads the
// record under the name's guard lock, so no acquisition can slip in, and
// spares its evidence; if the record cannot be read it sweeps nothing else.
func (s *Store) Forget(ctx context.Context, k store.Key, id string) error {
	if _, err := s.keepPath(k, id); err != nil {
		return err
	}
	g, err := atomicfs.LockGuard(s.guardPath(k), filePerm)
	if err != nil {
		return unsafe(err)
	}
	defer func() { _ = g.Unlock() }()
	current, known := s.currentID(ctx, k)
	dir := filepath.Join(s.root, string(store.Locks))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		name, eid, ok := parseKeepName(e.Name())
		if !ok || name != k.Name || eid == current || (!known && eid != id) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if held, err := atomicfs.IsHeld(path); err != nil || held {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// currentID is the lock_id of the name's record ("" if there is none);
// known is false when the record cannot be read or parsed.
func (s *Store) currentID(ctx context.Context, k store.Key) (id string, known bool) {
	data, err := s.Read(ctx, store.Key{NS: store.Locks, Name: k.Name})
	if errors.Is(err, fs.ErrNotExist) {
		return "", true
	}
	if err != nil {
		return "", false
	}
	var rec struct {
		LockID string `json:"lock_id"`
	}
	if json.Unmarshal(data, &rec) != nil {
		return "", false
	}
	return rec.LockID, true
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
	path, err := s.keepPath(k, id)
	if err != nil {
		return nil, err
	}
	data, err := atomicfs.ReadFile(path)
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
