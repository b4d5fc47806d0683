package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/aptfleet/aptfleet/internal/debian"
)

// Errors reading a dist.
var (
	// ErrNoDist: the dist has no InRelease.
	ErrNoDist = errors.New("repo: no such dist")
	// ErrCorrupt: an index does not match the checksum its Release lists.
	ErrCorrupt = errors.New("repo: index does not match its checksum")
	// ErrWrongDist: a dist's Release names another dist in its Suite or
	// Codename (another dist's signed files copied over this one).
	ErrWrongDist = errors.New("repo: Release is for another dist")
	// ErrExpired: a dist's Release is past its Valid-Until.
	ErrExpired = errors.New("repo: Release expired")
)

// Reader reads dists the way apt does: InRelease first, its signature
// checked, then each index by hash, its checksum checked. It is what the
// puller uses, and it never writes.
type Reader struct {
	Store   Store
	Keyring Keyring
	// Architecture selects the binary-<arch> indexes Index returns
	// (Architecture: all entries are included too). Default "amd64".
	Architecture string
	// Now is the clock Valid-Until is checked against. Default time.Now.
	Now func() time.Time
	// Components limits Dist and Index to these components, as an apt
	// source's Components line does. Default: every component the Release
	// lists.
	Components []string
}

// Dist is a consistent view of one dist at one InRelease.
type Dist struct {
	Name     string
	ETag     string // of InRelease
	Release  *Release
	Packages []Package // sorted by SortPackages
	// Restored lists the indexes (paths relative to the dist) whose by-hash
	// object was missing and that were read from their plain-path copy,
	// which matched the checksum InRelease lists.
	Restored []string
}

// Check is the cheap poll: one conditional GET of dists/<dist>/InRelease.
// With etag "" it always reports a change. It returns changed=false and etag
// itself when InRelease still has that ETag. A missing dist is ErrNoDist.
func (r *Reader) Check(ctx context.Context, dist, etag string) (changed bool, newETag string, err error) {
	rc, o, err := r.Store.Get(ctx, inReleaseKey(dist), etag)
	switch {
	case errors.Is(err, ErrNotModified):
		return false, etag, nil
	case errors.Is(err, ErrNotFound):
		return false, "", fmt.Errorf("%w: %s", ErrNoDist, dist)
	case err != nil:
		return false, "", fmt.Errorf("check %s: %w", inReleaseKey(dist), err)
	}
	rc.Close()
	// A store may give no ETag (a web server whose validators are too
	// recent to trust): "" never matches, so the next check reads again.
	return etag == "" || o.ETag != etag, o.ETag, nil
}

// Index returns the packages of dist for r.Architecture, after checking the
// InRelease signature with r.Keyring and every index's SHA256: sorted by
// name, newest version first.
func (r *Reader) Index(ctx context.Context, dist string) ([]Package, error) {
	d, err := r.Dist(ctx, dist)
	if err != nil {
		return nil, err
	}
	return d.Packages, nil
}

// Dist reads dist: its verified Release and the packages of r.Architecture.
// As apt does, it refuses a Release whose Suite or Codename is not dist
// (ErrWrongDist) and one past its Valid-Until (ErrExpired), before fetching
// any index.
func (r *Reader) Dist(ctx context.Context, dist string) (*Dist, error) {
	arch := r.Architecture
	if arch == "" {
		arch = "amd64"
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	accept := func(rel *Release) error { return CheckRelease(rel, dist, now()) }
	d, err := readDist(ctx, r.Store, r.Keyring, dist, func(a string) bool { return a == arch }, true, accept)
	if err != nil || len(r.Components) == 0 {
		return d, err
	}
	d.Packages = slices.DeleteFunc(d.Packages, func(p Package) bool { return !slices.Contains(r.Components, p.Component) })
	return d, nil
}

// CheckRelease reports whether rel may be trusted as dist's Release at now:
// its Suite and Codename are dist, and its Valid-Until, if any, is not past.
func CheckRelease(rel *Release, dist string, now time.Time) error {
	if rel.Suite != dist || rel.Codename != dist {
		return fmt.Errorf("%w: Suite %q and Codename %q, not %q", ErrWrongDist, rel.Suite, rel.Codename, dist)
	}
	if !rel.ValidUntil.IsZero() && now.After(rel.ValidUntil) {
		return fmt.Errorf("%w: Valid-Until %s is past (Date %s)", ErrExpired,
			rel.ValidUntil.UTC().Format(time.RFC3339), rel.Date.UTC().Format(time.RFC3339))
	}
	return nil
}

func inReleaseKey(dist string) string { return "dists/" + dist + "/InRelease" }

// getAll reads a whole object.
func getAll(ctx context.Context, s Store, key string) ([]byte, Object, error) {
	rc, o, err := s.Get(ctx, key, "")
	if err != nil {
		return nil, o, err
	}
	defer rc.Close()
	var b bytes.Buffer
	if o.Size > 0 {
		b.Grow(int(o.Size))
	}
	if _, err := b.ReadFrom(rc); err != nil {
		return nil, o, fmt.Errorf("read %s: %w", key, err)
	}
	return b.Bytes(), o, nil
}

// readDist reads InRelease, verifies it, and reads the uncompressed
// Packages index (by hash) of every component and every architecture arch
// accepts. Entries listed under several architectures (Architecture: all)
// are returned once, sorted by SortPackages if sorted is set, else in index
// order.
func readDist(ctx context.Context, s Store, kr Keyring, dist string, arch func(string) bool, sorted bool, accept func(*Release) error) (*Dist, error) {
	if err := debian.CheckDist(dist); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	data, o, err := getAll(ctx, s, inReleaseKey(dist))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoDist, dist)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", inReleaseKey(dist), err)
	}
	text, err := kr.VerifyInRelease(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", inReleaseKey(dist), err)
	}
	rel, err := ParseRelease(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", inReleaseKey(dist), err)
	}
	if accept != nil {
		if err := accept(rel); err != nil {
			return nil, fmt.Errorf("%s: %w", inReleaseKey(dist), err)
		}
	}
	d := &Dist{Name: dist, ETag: o.ETag, Release: rel}
	var seen map[pkgKey]bool // only needed with several indexes
	for _, comp := range rel.Components {
		for _, a := range rel.Architectures {
			if !arch(a) {
				continue
			}
			path := comp + "/binary-" + a + "/Packages.gz"
			rf, ok := rel.File(path)
			if !ok {
				return nil, fmt.Errorf("%s: %w: %s not listed", inReleaseKey(dist), ErrCorrupt, path)
			}
			pkgs, restored, err := readPackages(ctx, s, dist, comp, rel, rf)
			if err != nil {
				return nil, err
			}
			if restored {
				d.Restored = append(d.Restored, rf.Path)
			}
			if d.Packages == nil {
				d.Packages = pkgs
				continue
			}
			if seen == nil {
				seen = make(map[pkgKey]bool, len(d.Packages))
				for _, p := range d.Packages {
					seen[p.key()] = true
				}
			}
			for _, p := range pkgs {
				if !seen[p.key()] {
					seen[p.key()] = true
					d.Packages = append(d.Packages, p)
				}
			}
		}
	}
	if sorted {
		SortPackages(d.Packages)
	}
	return d, nil
}

// readPackages fetches the index rf (Packages.gz) by hash, checks its
// checksum and parses it. When the by-hash object is missing or damaged it
// falls back, as apt does, to the plain-path copy, if that matches the
// checksum; restored says so.
func readPackages(ctx context.Context, s Store, dist, comp string, rel *Release, rf ReleaseFile) (pkgs []Package, restored bool, err error) {
	data, key, restored, err := readIndex(ctx, s, dist, rf)
	if err != nil {
		return nil, false, err
	}
	plainSize := int64(0)
	if pf, ok := rel.File(strings.TrimSuffix(rf.Path, ".gz")); ok {
		plainSize = pf.Size
	}
	pkgs, err = parseCompressed(key, data, comp, plainSize)
	return pkgs, restored, err
}

// readIndex returns the bytes of the index rf lists: its by-hash object,
// else its plain-path copy when that one matches rf (restored).
func readIndex(ctx context.Context, s Store, dist string, rf ReleaseFile) (data []byte, key string, restored bool, err error) {
	key = byHashKey(dist, rf.Path, rf.SHA256)
	data, _, err = getAll(ctx, s, key)
	if err == nil && matches(data, rf) {
		return data, key, false, nil
	}
	if err == nil {
		err = ErrCorrupt
	}
	plain := "dists/" + dist + "/" + rf.Path
	if pdata, _, perr := getAll(ctx, s, plain); perr == nil && matches(pdata, rf) {
		return pdata, plain, true, nil
	}
	return nil, key, false, fmt.Errorf("read %s: %w (no copy with that checksum at %s either)", key, err, plain)
}

// gunzipAll decompresses data; size, when known, is the decompressed size
// (from Release), so the buffer is allocated once.
func gunzipAll(data []byte, size int64) ([]byte, error) {
	z, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if size <= 0 || size > 1<<31 {
		size = int64(len(data)) * 6
	}
	plain := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := plain.ReadFrom(z); err != nil {
		return nil, err
	}
	return plain.Bytes(), nil
}

// parseCompressed parses a Packages.gz held in data.
func parseCompressed(key string, data []byte, comp string, plainSize int64) ([]Package, error) {
	plain, err := gunzipAll(data, plainSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	pkgs, err := ParsePackages(plain, comp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return pkgs, nil
}

// Versions returns the versions of name in pkgs, newest first, without
// duplicates.
func Versions(pkgs []Package, name string) []string {
	var out []string
	for _, p := range pkgs {
		if p.Name == name && !slices.Contains(out, p.Version) {
			out = append(out, p.Version)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return debian.CompareVersions(b, a) })
	return out
}
