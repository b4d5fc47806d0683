package pkgbuild_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// debFile is a .deb read back into its members, for assertions.
type debFile struct {
	members []string          // ar member names, in order
	control map[string][]byte // control.tar.gz files by name ("control", "postinst"...)
	data    map[string][]byte // data.tar.gz regular files by path ("etc/default/hello")
	listing []string          // data.tar.gz entries as "mode owner/group path[ -> target]"
}

// readDeb parses a .deb (ar archive holding gzip tars) with the standard library.
func readDeb(t *testing.T, deb []byte) *debFile {
	t.Helper()
	d := &debFile{control: map[string][]byte{}, data: map[string][]byte{}}
	if !bytes.HasPrefix(deb, []byte("!<arch>\n")) {
		t.Fatalf("not an ar archive")
	}
	rest := deb[8:]
	for len(rest) >= 60 {
		hdr := rest[:60]
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(hdr[48:58])))
		if err != nil {
			t.Fatalf("ar member %s: bad size", name)
		}
		body := rest[60 : 60+size]
		rest = rest[60+size:]
		if size%2 == 1 && len(rest) > 0 {
			rest = rest[1:]
		}
		d.members = append(d.members, name)
		switch name {
		case "control.tar.gz":
			readTarGz(t, body, func(h *tar.Header, b []byte) {
				d.control[strings.TrimPrefix(h.Name, "./")] = b
			})
		case "data.tar.gz":
			readTarGz(t, body, func(h *tar.Header, b []byte) {
				p := strings.TrimPrefix(h.Name, "./")
				line := fmt.Sprintf("%s %s/%s %s", fileModeString(h), h.Uname, h.Gname, p)
				if h.Typeflag == tar.TypeSymlink {
					line += " -> " + h.Linkname
				}
				d.listing = append(d.listing, line)
				if h.Typeflag == tar.TypeReg {
					d.data[p] = b
				}
			})
		}
	}
	return d
}

func readTarGz(t *testing.T, b []byte, fn func(*tar.Header, []byte)) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fn(h, body)
	}
}

func fileModeString(h *tar.Header) string {
	kind := "-"
	switch h.Typeflag {
	case tar.TypeDir:
		kind = "d"
	case tar.TypeSymlink:
		kind = "l"
	}
	return fmt.Sprintf("%s%04o", kind, h.Mode&0o7777)
}
