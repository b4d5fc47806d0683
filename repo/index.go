package repo

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// Package is one entry of a Packages index.
type Package struct {
	Name         string
	Version      string
	Architecture string
	Component    string // the index it was read from ("main")
	Filename     string // pool path relative to the repository root
	Size         int64
	SHA256       string // hex
	// Raw is the entry's paragraph as it appears in the index, ending in a
	// newline. It may share memory with the index it was read from.
	Raw []byte
}

// Control parses the entry's fields.
func (p Package) Control() (Paragraph, error) { return ParseParagraph(p.Raw) }

// Field returns one single-line field of the entry ("Depends").
func (p Package) Field(name string) string { return fieldValue(p.Raw, name) }

// String is "name version arch".
func (p Package) String() string { return p.Name + " " + p.Version + " " + p.Architecture }

type pkgKey struct{ component, name, version, arch string }

func (p Package) key() pkgKey { return pkgKey{p.Component, p.Name, p.Version, p.Architecture} }

// SortPackages orders pkgs by name, then newest version first, then
// architecture and component.
func SortPackages(pkgs []Package) {
	slices.SortFunc(pkgs, func(a, b Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := CompareVersions(b.Version, a.Version); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Architecture, b.Architecture), strings.Compare(a.Component, b.Component))
	})
}

// Latest returns the highest version of name in pkgs for which skip (if
// not nil) returns false.
func Latest(pkgs []Package, name string, skip func(version string) bool) (Package, bool) {
	var best Package
	found := false
	for _, p := range pkgs {
		if p.Name != name || (skip != nil && skip(p.Version)) {
			continue
		}
		if !found || CompareVersions(p.Version, best.Version) > 0 {
			best, found = p, true
		}
	}
	return best, found
}

// newPackage makes the index entry for a .deb stored at filename.
func newPackage(component, filename string, d *Deb) Package {
	var p Paragraph
	for _, f := range d.Control {
		switch strings.ToLower(f.Name) {
		case "filename", "size", "md5sum", "sha1", "sha256", "sha512", "description":
			continue
		}
		p = append(p, f)
	}
	p = append(p,
		Field{"Filename", filename},
		Field{"Size", strconv.FormatInt(d.Size, 10)},
		Field{"MD5sum", d.MD5},
		Field{"SHA256", d.SHA256},
	)
	if desc := d.Control.Get("Description"); desc != "" {
		p = append(p, Field{"Description", desc})
	}
	return Package{
		Name: d.Name(), Version: d.Version(), Architecture: d.Architecture(), Component: component,
		Filename: filename, Size: d.Size, SHA256: d.SHA256, Raw: []byte(p.String()),
	}
}

// ParsePackages parses a Packages index held in data. The entries' Raw
// fields point into data.
func ParsePackages(data []byte, component string) ([]Package, error) {
	var out []Package
	for len(data) > 0 {
		// Skip blank lines between paragraphs.
		for len(data) > 0 && (data[0] == '\n' || data[0] == '\r') {
			data = data[1:]
		}
		if len(data) == 0 {
			break
		}
		end := bytes.Index(data, []byte("\n\n"))
		var raw []byte
		if end < 0 {
			raw, data = data, nil
			if raw[len(raw)-1] != '\n' {
				raw = append(raw[:len(raw):len(raw)], '\n')
			}
		} else {
			raw, data = data[:end+1], data[end+2:]
		}
		p, size, err := parseEntry(raw, component)
		var fe *FieldError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("Packages entry %q: %w", truncate(firstLineOf(raw), 60), err)
		}
		if p.Name == "" || p.Version == "" || p.Architecture == "" || p.Filename == "" || p.SHA256 == "" || err != nil {
			return nil, fmt.Errorf("%w: Packages entry %q lacks Package, Version, Architecture, Filename, Size or SHA256",
				ErrBadControl, truncate(string(raw), 60))
		}
		p.Size = size
		out = append(out, p)
	}
	return out, nil
}

func firstLineOf(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Release is the content of a dist's Release file.
type Release struct {
	Origin   string
	Label    string
	Suite    string
	Codename string
	Date     time.Time
	// ValidUntil, when set, is when clients stop trusting this Release
	// (apt's Valid-Until): a replayed old InRelease then expires.
	ValidUntil    time.Time
	Architectures []string
	Components    []string
	// Files are the indexes, paths relative to dists/<dist>/.
	Files []ReleaseFile
}

// ReleaseFile is one index listed in a Release file.
type ReleaseFile struct {
	Path   string // "main/binary-amd64/Packages.gz"
	Size   int64
	SHA256 string
	SHA512 string // empty unless Config.SHA512
}

// ValidFor is the validity period this Release was signed with
// (Valid-Until - Date), 0 when it has no Valid-Until.
func (r *Release) ValidFor() time.Duration {
	if r.ValidUntil.IsZero() {
		return 0
	}
	return r.ValidUntil.Sub(r.Date)
}

// File returns the entry for path.
func (r *Release) File(path string) (ReleaseFile, bool) {
	for _, f := range r.Files {
		if f.Path == path {
			return f, true
		}
	}
	return ReleaseFile{}, false
}

// Bytes renders the Release file.
func (r *Release) Bytes() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Origin: %s\nLabel: %s\nSuite: %s\nCodename: %s\n", r.Origin, r.Label, r.Suite, r.Codename)
	fmt.Fprintf(&b, "Date: %s\n", r.Date.UTC().Format(time.RFC1123Z))
	if !r.ValidUntil.IsZero() {
		fmt.Fprintf(&b, "Valid-Until: %s\n", r.ValidUntil.UTC().Format(time.RFC1123Z))
	}
	fmt.Fprintf(&b, "Architectures: %s\nComponents: %s\n", strings.Join(r.Architectures, " "), strings.Join(r.Components, " "))
	b.WriteString("Acquire-By-Hash: yes\n")
	b.WriteString("SHA256:\n")
	for _, f := range r.Files {
		fmt.Fprintf(&b, " %s %16d %s\n", f.SHA256, f.Size, f.Path)
	}
	if len(r.Files) > 0 && r.Files[0].SHA512 != "" {
		b.WriteString("SHA512:\n")
		for _, f := range r.Files {
			fmt.Fprintf(&b, " %s %16d %s\n", f.SHA512, f.Size, f.Path)
		}
	}
	return b.Bytes()
}

// ParseRelease parses Release text.
func ParseRelease(data []byte) (*Release, error) {
	p, err := parseParagraph(data, releaseSingleLine)
	if err != nil {
		return nil, fmt.Errorf("Release: %w", err)
	}
	r := &Release{
		Origin: p.Get("Origin"), Label: p.Get("Label"), Suite: p.Get("Suite"), Codename: p.Get("Codename"),
		Architectures: strings.Fields(p.Get("Architectures")), Components: strings.Fields(p.Get("Components")),
	}
	if d := p.Get("Date"); d != "" {
		if r.Date, err = time.Parse(time.RFC1123Z, d); err != nil {
			return nil, fmt.Errorf("%w: Release Date %q", ErrBadControl, d)
		}
	}
	if d := p.Get("Valid-Until"); d != "" {
		if r.ValidUntil, err = time.Parse(time.RFC1123Z, d); err != nil {
			return nil, fmt.Errorf("%w: Release Valid-Until %q", ErrBadControl, d)
		}
	}
	byPath := map[string]int{}
	for _, algo := range []string{"SHA256", "SHA512"} {
		for _, line := range strings.Split(p.Get(algo), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			size, err := strconv.ParseInt(f[1%len(f)], 10, 64)
			if len(f) != 3 || err != nil {
				return nil, fmt.Errorf("%w: Release %s line %q", ErrBadControl, algo, strings.TrimSpace(line))
			}
			i, ok := byPath[f[2]]
			if !ok {
				i = len(r.Files)
				byPath[f[2]] = i
				r.Files = append(r.Files, ReleaseFile{Path: f[2], Size: size})
			}
			if algo == "SHA256" {
				r.Files[i].SHA256 = f[0]
			} else {
				r.Files[i].SHA512 = f[0]
			}
		}
	}
	for _, f := range r.Files {
		if f.SHA256 == "" {
			return nil, fmt.Errorf("%w: Release lists %s without a SHA256", ErrBadControl, f.Path)
		}
	}
	return r, nil
}

// indexFile is one rendered index (Packages, Packages.gz, Packages.xz).
type indexFile struct {
	path string // relative to dists/<dist>/
	data []byte // nil: listed in Release, not stored
	rf   ReleaseFile
}

// stored reports whether an index listed in a Release is stored as an
// object: the compressed ones are, the uncompressed Packages is not.
func stored(path string) bool {
	return strings.HasSuffix(path, ".gz") || strings.HasSuffix(path, ".xz")
}

// byHashKeys are the by-hash names of the index: SHA256, and SHA512 when
// the Release lists it (apt fetches by the strongest hash listed).
func (f ReleaseFile) byHashKeys(dist string) []string {
	keys := []string{byHashKey(dist, f.Path, f.SHA256)}
	if f.SHA512 != "" {
		dir := f.Path[:strings.LastIndexByte(f.Path, '/')]
		keys = append(keys, "dists/"+dist+"/"+dir+"/by-hash/SHA512/"+f.SHA512)
	}
	return keys
}

// byHashKey is the SHA256 by-hash name of the index at path (relative to
// the dist).
func byHashKey(dist, path, sum string) string {
	dir := path[:strings.LastIndexByte(path, '/')]
	return "dists/" + dist + "/" + dir + "/by-hash/SHA256/" + sum
}

func newIndexFile(path string, data []byte, withSHA512 bool) indexFile {
	s2 := sha256.Sum256(data)
	rf := ReleaseFile{Path: path, Size: int64(len(data)), SHA256: hex.EncodeToString(s2[:])}
	if withSHA512 {
		s5 := sha512.Sum512(data)
		rf.SHA512 = hex.EncodeToString(s5[:])
	}
	return indexFile{path: path, data: data, rf: rf}
}

// renderPackages writes the Packages index of pkgs (already filtered and
// sorted) in its compressed forms: Packages.gz, and Packages.xz if asked.
// The uncompressed index is only listed: apt and Reader fetch Packages.gz,
// a fraction of the bytes to upload and download.
func renderPackages(dir string, pkgs []Package, withXZ, withSHA512 bool) ([]indexFile, error) {
	// The entries are streamed through the hashes and compressors: the
	// uncompressed index (6 MB at 10,000 entries) is never held whole.
	n := 0
	for _, p := range pkgs {
		n += len(p.Raw) + 1
	}
	s2 := sha256.New()
	var s5 hash.Hash
	ws := []io.Writer{s2}
	if withSHA512 {
		s5 = sha512.New()
		ws = append(ws, s5)
	}
	var gz bytes.Buffer
	gz.Grow(n/5 + 4096)
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	ws = append(ws, zw)
	var xb bytes.Buffer
	var xw *xz.Writer
	if withXZ {
		var err error
		if xw, err = xz.NewWriter(&xb); err != nil {
			return nil, err
		}
		ws = append(ws, xw)
	}
	w := bufio.NewWriterSize(io.MultiWriter(ws...), 256<<10)
	for _, p := range pkgs {
		w.Write(p.Raw)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	// The uncompressed index is listed (apt needs its entry, and checks
	// the decompressed bytes against it) but not stored, as on Debian's
	// mirrors.
	plain := indexFile{path: dir + "/Packages", rf: ReleaseFile{Path: dir + "/Packages", Size: int64(n), SHA256: hex.EncodeToString(s2.Sum(nil))}}
	if s5 != nil {
		plain.rf.SHA512 = hex.EncodeToString(s5.Sum(nil))
	}
	files := []indexFile{plain, newIndexFile(dir+"/Packages.gz", gz.Bytes(), withSHA512)}
	if xw != nil {
		if err := xw.Close(); err != nil {
			return nil, err
		}
		files = append(files, newIndexFile(dir+"/Packages.xz", xb.Bytes(), withSHA512))
	}
	return files, nil
}

// parseEntry reads the fields the repository needs from one Packages
// paragraph in a single pass, through the same strict parser as control
// files (a second Version, or a "version" field, is an error, not a choice).
func parseEntry(raw []byte, component string) (Package, int64, error) {
	p := Package{Component: component, Raw: raw}
	var size int64 = -1
	var sizeErr error
	err := scanFields(raw, singleLine, func(name, first, _ []byte) error {
		switch string(name) {
		case "Package":
			p.Name = string(first)
		case "Version":
			p.Version = string(first)
		case "Architecture":
			p.Architecture = string(first)
		case "Filename":
			p.Filename = string(first)
		case "SHA256":
			p.SHA256 = string(first)
		case "Size":
			size, sizeErr = strconv.ParseInt(string(first), 10, 64)
		}
		return nil
	})
	if err != nil {
		return p, size, err
	}
	if size < 0 && sizeErr == nil {
		sizeErr = fmt.Errorf("no Size")
	}
	return p, size, sizeErr
}
