package repo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/blakesmith/ar"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/aptfleet/aptfleet/internal/debian"
)

// ErrBadDeb is returned for a file that is not a well-formed Debian package.
var ErrBadDeb = errors.New("repo: not a valid .deb")

// Deb is what the repository needs to know about one .deb file.
type Deb struct {
	Control Paragraph // the package's control file
	Size    int64
	MD5     string // hex
	SHA256  string // hex
}

// Name, Version and Architecture come from the control file.
func (d *Deb) Name() string         { return d.Control.Get("Package") }
func (d *Deb) Version() string      { return d.Control.Get("Version") }
func (d *Deb) Architecture() string { return d.Control.Get("Architecture") }

// ReadDeb reads a .deb from r: its control file, size and checksums. The
// whole stream is consumed.
func ReadDeb(r io.Reader) (*Deb, error) {
	md, sh := md5.New(), sha256.New()
	cr := &countReader{r: io.TeeReader(r, io.MultiWriter(md, sh))}
	control, err := readControl(cr)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDeb, err)
	}
	d := &Deb{Control: control, Size: cr.n, MD5: hex.EncodeToString(md.Sum(nil)), SHA256: hex.EncodeToString(sh.Sum(nil))}
	if err := checkControl(control); err != nil {
		return nil, err
	}
	return d, nil
}

func checkControl(c Paragraph) error {
	name, ver, arch := c.Get("Package"), c.Get("Version"), c.Get("Architecture")
	if !debian.ValidPackageName(name) {
		return fmt.Errorf("%w: control file has invalid Package %q", ErrBadDeb, name)
	}
	if _, err := debian.ParseVersion(ver); err != nil {
		return fmt.Errorf("%w: control file: %v", ErrBadDeb, err)
	}
	if !debian.ValidArch(arch) {
		return fmt.Errorf("%w: control file has invalid Architecture %q", ErrBadDeb, arch)
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func readControl(r io.Reader) (Paragraph, error) {
	bad := func(format string, a ...any) (Paragraph, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadDeb}, a...)...)
	}
	ar := ar.NewReader(r)
	h, err := ar.Next()
	if err != nil {
		return bad("not an ar archive")
	}
	if strings.TrimSuffix(h.Name, "/") != "debian-binary" {
		return bad("first member is %q, not debian-binary", h.Name)
	}
	v, err := io.ReadAll(io.LimitReader(ar, 64))
	if err != nil || !strings.HasPrefix(string(v), "2.") {
		return bad("unsupported format version %q", strings.TrimSpace(string(v)))
	}
	for {
		h, err := ar.Next()
		if err == io.EOF {
			return bad("no control.tar member")
		}
		if err != nil {
			return bad("%v", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !strings.HasPrefix(name, "control.tar") {
			continue
		}
		var tr io.Reader
		switch path.Ext(name) {
		case ".tar":
			tr = ar
		case ".gz":
			z, err := gzip.NewReader(ar)
			if err != nil {
				return bad("%s: %v", name, err)
			}
			tr = z
		case ".xz":
			z, err := xz.NewReader(ar)
			if err != nil {
				return bad("%s: %v", name, err)
			}
			tr = z
		case ".zst":
			z, err := zstd.NewReader(ar)
			if err != nil {
				return bad("%s: %v", name, err)
			}
			defer z.Close()
			tr = z
		default:
			return bad("unknown control member %q", name)
		}
		t := tar.NewReader(tr)
		for {
			th, err := t.Next()
			if err == io.EOF {
				return bad("%s has no control file", name)
			}
			if err != nil {
				return bad("%s: %v", name, err)
			}
			if path.Clean(strings.TrimPrefix(th.Name, "./")) != "control" {
				continue
			}
			data, err := io.ReadAll(io.LimitReader(t, 1<<20))
			if err != nil {
				return bad("%s: %v", name, err)
			}
			p, err := ParseParagraph(bytes.TrimSpace(data))
			if err != nil {
				return bad("control file: %v", err)
			}
			return p, nil
		}
	}
}

// PoolPath is where a package lives in the pool:
// pool/<component>/<prefix>/<source>/<name>_<version without epoch>_<arch>.deb,
// with <prefix> the source's first letter, or "lib" and the next for lib*.
func PoolPath(component string, control Paragraph) string {
	name := control.Get("Package")
	src := control.Get("Source")
	if i := strings.IndexByte(src, ' '); i >= 0 {
		src = src[:i]
	}
	if src == "" {
		src = name
	}
	prefix := src[:1]
	if strings.HasPrefix(src, "lib") && len(src) > 3 {
		prefix = src[:4]
	}
	ver := control.Get("Version")
	if i := strings.IndexByte(ver, ':'); i >= 0 {
		ver = ver[i+1:]
	}
	return fmt.Sprintf("pool/%s/%s/%s/%s_%s_%s.deb", component, prefix, src, name, ver, control.Get("Architecture"))
}
