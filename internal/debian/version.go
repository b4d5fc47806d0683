package debian

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadVersion is wrapped by every error for a string that is not a valid
// Debian version.
var ErrBadVersion = errors.New("not a valid Debian version")

// Version is a parsed Debian version: [epoch:]upstream[-revision].
type Version struct {
	Epoch    int
	Upstream string
	Revision string
}

// String formats v as dpkg does.
func (v Version) String() string {
	s := v.Upstream
	if v.Epoch != 0 {
		s = fmt.Sprint(v.Epoch) + ":" + s
	}
	if v.Revision != "" {
		s += "-" + v.Revision
	}
	return s
}

// ParseVersion parses and validates s by the rules of deb-version(7), as
// `dpkg --validate-version` applies them: the epoch is a number; the upstream
// part starts with a digit and holds only letters, digits and ". + ~", plus
// '-' when there is a revision and ':' when there is an epoch; the revision
// (after the last '-') holds letters, digits and ". + ~". White space anywhere
// is refused (dpkg trims it at the ends; a control file or a flag never needs
// it).
func ParseVersion(s string) (Version, error) {
	bad := func(format string, a ...any) (Version, error) {
		return Version{}, fmt.Errorf("%q is %w: %s", s, ErrBadVersion, fmt.Sprintf(format, a...))
	}
	if s == "" {
		return bad("it is empty")
	}
	if strings.ContainsAny(s, " \t\n\r\v\f") {
		return bad("it contains whitespace")
	}
	var v Version
	rest := s
	hasEpoch := false
	if ep, after, ok := strings.Cut(rest, ":"); ok {
		if ep == "" {
			return bad("the epoch before ':' is empty")
		}
		n := 0
		for _, c := range ep {
			if c < '0' || c > '9' {
				return bad("epoch %q is not a number", ep)
			}
			n = n*10 + int(c-'0')
			if n > 1<<31-1 {
				return bad("epoch %q is too large", ep)
			}
		}
		v.Epoch, rest, hasEpoch = n, after, true
	}
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		v.Revision, rest = rest[i+1:], rest[:i]
		if v.Revision == "" {
			return bad("the revision after the last '-' is empty")
		}
		for _, c := range v.Revision {
			if !isAlnum(c) && !strings.ContainsRune(".+~", c) {
				return bad("revision %q must be letters, digits, '+', '.' or '~'", v.Revision)
			}
		}
	}
	v.Upstream = rest
	if rest == "" || !isDigit(rest[0]) {
		return bad("it must start with a digit")
	}
	allowed := ".+~-"
	if hasEpoch {
		allowed += ":"
	}
	for _, c := range rest {
		if !isAlnum(c) && !strings.ContainsRune(allowed, c) {
			return bad("invalid character %q in upstream version %q (use only letters, digits and %q)", c, rest, allowed)
		}
	}
	return v, nil
}

// CheckVersion reports whether s is a valid Debian version (see ParseVersion).
func CheckVersion(s string) error {
	_, err := ParseVersion(s)
	return err
}

// ValidRevision reports whether s can be a Debian revision: letters, digits,
// '+', '.' and '~', not empty.
func ValidRevision(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !isAlnum(c) && !strings.ContainsRune(".+~", c) {
			return false
		}
	}
	return true
}

func isAlnum(c rune) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// CompareVersions orders two Debian versions exactly as
// `dpkg --compare-versions` does: negative when a < b, zero when equal,
// positive when a > b. Invalid strings are compared the way dpkg compares
// them after its warning, so the order is total.
func CompareVersions(a, b string) int {
	ea, ua, ra := split(a)
	eb, ub, rb := split(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

// split mirrors dpkg's parseversion: the epoch is the number before the first
// colon, the revision what follows the last hyphen.
func split(s string) (epoch int64, upstream, revision string) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		for _, c := range s[:i] {
			if c >= '0' && c <= '9' {
				epoch = epoch*10 + int64(c-'0')
			} else {
				break
			}
		}
		s = s[i+1:]
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		return epoch, s[:i], s[i+1:]
	}
	return epoch, s, ""
}

// order is dpkg's character weight: tilde sorts before everything, even the
// end of the string; letters before other characters.
func order(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return 0
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

// verrevcmp is dpkg's lib/dpkg/version.c verrevcmp.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		firstDiff := 0
		for i < len(a) && !isDigit(a[i]) || j < len(b) && !isDigit(b[j]) {
			ac, bc := 0, 0
			if i < len(a) {
				ac = order(a[i])
			}
			if j < len(b) {
				bc = order(b[j])
			}
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return sign(firstDiff)
		}
	}
	return 0
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
