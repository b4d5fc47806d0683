package debian

import (
	"fmt"
	"strings"
)

// ValidFieldName reports whether name is a valid control-field name
// (deb822(5)): one or more printable US-ASCII characters other than space and
// ':', not starting with '#' or '-'.
func ValidFieldName(name string) bool {
	if name == "" || name[0] == '#' || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < '!' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// CheckFieldName returns an error naming name unless ValidFieldName(name).
func CheckFieldName(name string) error {
	if !ValidFieldName(name) {
		return fmt.Errorf("%q is not a valid control-field name (printable ASCII without space or ':', not starting with '#' or '-')", name)
	}
	return nil
}

// SingleLine reports whether value fits a single-line control field: no line
// break of any kind.
func SingleLine(value string) bool { return !strings.ContainsAny(value, "\n\r") }

// CheckSingleLine returns an error naming field unless value is SingleLine.
func CheckSingleLine(field, value string) error {
	if !SingleLine(value) {
		return fmt.Errorf("%s: %q must be a single line", field, value)
	}
	return nil
}
