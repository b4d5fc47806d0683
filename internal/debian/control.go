package debian

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
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

// section is a Section value: an optional archive area and a section,
// "web" or "contrib/net".
var section = regexp.MustCompile(`^[a-z0-9][a-z0-9+._-]*(/[a-z0-9][a-z0-9+._-]*)?$`)

// CheckSection checks a Section value: "web", "contrib/net".
func CheckSection(s string) error {
	if !section.MatchString(s) {
		return fmt.Errorf("%q is not a Debian section (like \"web\" or \"contrib/net\")", s)
	}
	return nil
}

// Priorities are the values of a control file's Priority field.
var Priorities = []string{"required", "important", "standard", "optional", "extra"}

// CheckPriority checks a Priority value against Priorities.
func CheckPriority(s string) error {
	if !slices.Contains(Priorities, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(Priorities, ", "))
	}
	return nil
}

// CheckHomepage checks a Homepage value: an absolute http or https URL
// without white space.
func CheckHomepage(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

// ParseSource parses a binary package's Source value: a source package name
// with an optional " (version)" when the source version differs.
func ParseSource(s string) (name, version string, err error) {
	bad := fmt.Errorf("%q is not a source package name with an optional \"(version)\"", s)
	name, rest, hasVersion := strings.Cut(s, " ")
	if !ValidPackageName(name) {
		return "", "", bad
	}
	if !hasVersion {
		return name, "", nil
	}
	if len(rest) < 3 || rest[0] != '(' || rest[len(rest)-1] != ')' {
		return "", "", bad
	}
	version = rest[1 : len(rest)-1]
	if strings.ContainsAny(version, "() \t\r\n\v\f") {
		return "", "", bad
	}
	if err := CheckVersion(version); err != nil {
		return "", "", err
	}
	return name, version, nil
}
