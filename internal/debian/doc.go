// Package debian holds Debian's syntax rules in one place: package names,
// versions (parse, validate, compare), dist and component names, architecture
// names and control-field syntax. It is a leaf: it imports only the standard
// library, and pkgbuild, repo, puller and userdata all check their input
// against it.
//
// The rules follow dpkg, and the tests check them against dpkg itself:
// version validity against `dpkg --validate-version`, version order against
// `dpkg --compare-versions`, architecture names against `dpkg-architecture -L`.
package debian
