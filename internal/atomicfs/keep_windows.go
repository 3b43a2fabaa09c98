package atomicfs

import (
	"errors"
	"io/fs"
	"os"
)

// CreateHeld is not implemented on Windows: a guarded command's process
// tree is not tracked there (the holder's pid is).
func (d *Dir) CreateHeld(string, fs.FileMode) (*os.File, error) { return nil, errors.ErrUnsupported }

// IsHeld reports false: nothing is ever held this way on Windows.
func (d *Dir) IsHeld(string) (bool, error) { return false, nil }

// CreateHeldWith is not supported on Windows (no flock).
func (d *Dir) CreateHeldWith(string, fs.FileMode, []byte) (*os.File, error) {
	return nil, errors.ErrUnsupported
}

// ReadHeld finds nothing held on Windows, where nothing can be.
func (d *Dir) ReadHeld(string) ([]byte, bool, error) { return nil, false, nil }
