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
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/blakesmith/ar"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
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

var (
	validName    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	validArch    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	validSource  = regexp.MustCompile(`^([a-z0-9][a-z0-9+.-]+)(?: \(([^()\s]+)\))?$`)
	validSection = regexp.MustCompile(`^[a-z0-9][a-z0-9+._-]*(/[a-z0-9][a-z0-9+._-]*)?$`)
)

// Priorities are the values of a control file's Priority field.
var Priorities = []string{"required", "important", "standard", "optional", "extra"}

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
	if err := CheckControl(control); err != nil {
		return nil, fmt.Errorf("%w: control file: %w", ErrBadDeb, err)
	}
	return d, nil
}

// CheckControl checks the fields of a binary package's control file that
// the repository and the fleet act on: Package, Version and Architecture
// (required), Source (a package name with an optional "(version)"),
// Section, Priority and Homepage. Every field is already on one line or a
// well-formed multi-line field (ParseParagraph); this checks the values.
func CheckControl(c Paragraph) error {
	bad := func(field, format string, a ...any) error {
		return &FieldError{Field: field, Line: c.line(field), Problem: fmt.Sprintf(format, a...)}
	}
	name, ver, arch := c.Get("Package"), c.Get("Version"), c.Get("Architecture")
	if !validName.MatchString(name) {
		return bad("Package", "%q is not a Debian package name", name)
	}
	if _, err := ParseVersion(ver); err != nil {
		return bad("Version", "%v", err)
	}
	if !validArch.MatchString(arch) {
		return bad("Architecture", "%q is not a Debian architecture", arch)
	}
	if src := c.Get("Source"); src != "" {
		m := validSource.FindStringSubmatch(src)
		if m == nil {
			return bad("Source", "%q is not a source package name with an optional \"(version)\"", src)
		}
		if m[2] != "" {
			if _, err := ParseVersion(m[2]); err != nil {
				return bad("Source", "%v", err)
			}
		}
	}
	if sec := c.Get("Section"); sec != "" {
		if err := CheckSection(sec); err != nil {
			return bad("Section", "%v", err)
		}
	}
	if pri := c.Get("Priority"); pri != "" {
		if err := CheckPriority(pri); err != nil {
			return bad("Priority", "%v", err)
		}
	}
	if hp := c.Get("Homepage"); hp != "" {
		if err := CheckHomepage(hp); err != nil {
			return bad("Homepage", "%v", err)
		}
	}
	return nil
}

// CheckSection checks a Section value: "web", "contrib/net".
func CheckSection(s string) error {
	if !validSection.MatchString(s) {
		return fmt.Errorf("%q is not a Debian section (like \"web\" or \"contrib/net\")", s)
	}
	return nil
}

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

// line is the 1-based position of field in p, 0 when absent.
func (p Paragraph) line(field string) int {
	n := 1
	for _, f := range p {
		if strings.EqualFold(f.Name, field) {
			return n
		}
		n += 1 + strings.Count(f.Value, "\n")
	}
	return 0
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
			if th.Size > MaxControlSize {
				return bad("control file is %d bytes; at most %d (repo.MaxControlSize)", th.Size, MaxControlSize)
			}
			data, err := io.ReadAll(io.LimitReader(t, MaxControlSize+1))
			if err != nil {
				return bad("%s: %v", name, err)
			}
			if len(data) > MaxControlSize {
				return bad("control file is over %d bytes (repo.MaxControlSize)", MaxControlSize)
			}
			// A second control member would be the one dpkg unpacks last.
			for {
				th, err := t.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return bad("%s: %v", name, err)
				}
				if path.Clean(strings.TrimPrefix(th.Name, "./")) == "control" {
					return bad("%s holds two control files", name)
				}
			}
			// Blank lines around the paragraph are fine; a leading space is
			// a continuation line and must stay one.
			p, err := ParseParagraph(bytes.Trim(data, "\n"))
			if err != nil {
				return bad("control file: %w", err)
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
