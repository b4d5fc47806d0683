// Package pkgbuild turns an application build tree and its package.yaml into
// a Debian package, with github.com/goreleaser/nfpm/v2 as the packager.
//
// Each process of the spec (from a Procfile or the processes map) becomes a
// systemd unit <name>-<process>.service running as the package's system user
// with EnvironmentFile=/etc/default/<name>; the units are grouped under
// <name>.target. The generated maintainer scripts create the user, enable the
// units, start them on first install, and never restart them on upgrade:
// the deploying agent restarts after draining the host and health-checks
// after. Builds are byte-for-byte reproducible for a fixed Spec.ModTime.
//
// A spec:
//
//	name: hello
//	maintainer: Hello Team <hello@example.com>
//	description: Says hello over HTTP
//	files:
//	  - {src: bin/hello, dst: /usr/bin/hello}
//	procfile: Procfile
//	environment: {PORT: "8080"}
package pkgbuild
