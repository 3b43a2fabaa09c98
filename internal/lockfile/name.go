package lockfile

import (
	"errors"
	"fmt"
)

// MaxNameLen is the longest lock or freeze name accepted.
const MaxNameLen = 128

// NameRule is shown to users whenever a name is rejected.
const NameRule = "names use only A-Z a-z 0-9 . _ -, are 1 to 128 characters long and do not start with '.'"

// ErrInvalidName is wrapped by every error ValidateName returns.
var ErrInvalidName = errors.New("invalid lock name")

// ValidateName checks a lock or freeze name against the protocol rule. Names
// become file names inside the root, so the rule is also what keeps a name
// from escaping it ("..", "/", NUL, leading dot for hidden guard files).
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: name is empty; %s", ErrInvalidName, NameRule)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: name is %d characters long; %s", ErrInvalidName, len(name), NameRule)
	case name[0] == '.':
		return fmt.Errorf("%w: %q starts with '.'; %s", ErrInvalidName, name, NameRule)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return fmt.Errorf("%w: %q contains %q at position %d; %s", ErrInvalidName, name, name[i:i+1], i+1, NameRule)
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}
