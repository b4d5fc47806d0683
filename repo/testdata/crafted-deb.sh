#!/bin/sh
# crafted-deb.sh OUT.deb CONTROL [CONTROL2]
#
# Builds a .deb from a control file given verbatim, with the same tools
# dpkg-deb's format is defined by (ar and tar), so the repository's tests
# can feed it control files no package builder would write: duplicate or
# lower-case field names, continuation lines, values over the size limit.
# A second control file, when given, is added to control.tar.gz under the
# same name. The payload is one small file; output is byte-for-byte
# reproducible (fixed times, owners and order; gzip -n).
#
# The tests in repo/crafted_test.go run it; nothing it makes is checked in.
set -eu
out=$1 control=$2 control2=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/c1" "$tmp/data/usr/share/crafted"
cp "$control" "$tmp/c1/control"
echo crafted > "$tmp/data/usr/share/crafted/payload"
topts="--format=gnu --owner=0 --group=0 --numeric-owner --mtime=@1700000000 --sort=name"
if [ -n "$control2" ]; then
	mkdir -p "$tmp/c2"
	cp "$control2" "$tmp/c2/control"
	tar $topts -cf "$tmp/control.tar" -C "$tmp/c1" ./control -C "$tmp/c2" ./control
else
	tar $topts -cf "$tmp/control.tar" -C "$tmp/c1" ./control
fi
gzip -n9 "$tmp/control.tar"
tar $topts -czf "$tmp/data.tar.gz" -C "$tmp/data" ./usr
printf '2.0\n' > "$tmp/debian-binary"
# ar's D modifier: zero timestamps, owners and modes, as dpkg-deb writes.
(cd "$tmp" && ar -rcD pkg.deb debian-binary control.tar.gz data.tar.gz)
mv "$tmp/pkg.deb" "$out"
