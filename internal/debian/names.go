package debian

//go:generate sh gen_arch.sh

import (
	"fmt"
	"regexp"
)

// packageName is Debian policy 5.6.7: lowercase letters, digits, '+', '-'
// and '.', at least two characters, starting with a letter or digit.
var packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// ValidPackageName reports whether s is a valid Debian package name.
func ValidPackageName(s string) bool { return packageName.MatchString(s) }

// CheckPackageName returns an error naming s unless it is a valid package name.
func CheckPackageName(s string) error {
	if !ValidPackageName(s) {
		return fmt.Errorf("%q is not a valid Debian package name (lowercase letters, digits, '+', '-', '.'; at least 2 characters)", s)
	}
	return nil
}

// distName is what aptfleet accepts as a dist (suite) or component name: a
// single path segment, so dists/<name>/ can never escape the repository.
var distName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ValidDist reports whether s is a valid dist or component name.
func ValidDist(s string) bool { return distName.MatchString(s) }

// CheckDist returns an error naming s unless it is a valid dist or component
// name.
func CheckDist(s string) error {
	if !ValidDist(s) {
		return fmt.Errorf("invalid name %q: use letters, digits, '.', '_' and '-'", s)
	}
	return nil
}

// ValidArch reports whether s is a Debian architecture a binary package can
// have: one of dpkg's known architectures (`dpkg-architecture -L`) or "all".
func ValidArch(s string) bool {
	_, ok := archSet[s]
	return ok
}

// CheckArch returns an error naming s unless ValidArch(s).
func CheckArch(s string) error {
	if !ValidArch(s) {
		return fmt.Errorf("%q is not a Debian architecture (one of `dpkg-architecture -L`, or \"all\")", s)
	}
	return nil
}

// Architectures returns the known architecture names, "all" first, then in
// dpkg-architecture -L order.
func Architectures() []string { return append([]string{"all"}, archNames...) }

var archSet = func() map[string]struct{} {
	m := make(map[string]struct{}, len(archNames)+1)
	m["all"] = struct{}{}
	for _, a := range archNames {
		m[a] = struct{}{}
	}
	return m
}()
