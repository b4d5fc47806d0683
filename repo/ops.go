package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/internal/debian"
)

// Ref names one version of a package: NAME=VERSION.
type Ref struct {
	Name    string
	Version string
}

func (r Ref) String() string { return r.Name + "=" + r.Version }

// ParseRef parses NAME=VERSION.
func ParseRef(s string) (Ref, error) {
	name, ver, ok := strings.Cut(s, "=")
	if !ok || !debian.ValidPackageName(name) {
		return Ref{}, fmt.Errorf("%q: want NAME=VERSION", s)
	}
	if _, err := debian.ParseVersion(ver); err != nil {
		return Ref{}, fmt.Errorf("%q: %w", s, err)
	}
	return Ref{name, ver}, nil
}

func (r Ref) matches(p Package) bool {
	return p.Name == r.Name && debian.CompareVersions(p.Version, r.Version) == 0
}

// List returns every package in dist, all architectures and components,
// sorted by name and newest version first.
func (r *Repo) List(ctx context.Context, dist string) ([]Package, error) {
	d, err := readDist(ctx, r.Store, r.keyring(), dist, func(string) bool { return true }, true)
	if err != nil {
		return nil, err
	}
	return d.Packages, nil
}

// Promote copies the index entries of refs (every architecture) from one
// dist to another: the same pool files, the same checksums. The target dist
// is created if needed. It returns the entries copied; entries already in
// the target are not counted.
func (r *Repo) Promote(ctx context.Context, from, to string, refs []Ref) ([]Package, error) {
	if err := debian.CheckDist(to); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	src, err := r.List(ctx, from)
	if err != nil {
		return nil, err
	}
	var pick []Package
	for _, ref := range refs {
		n := len(pick)
		for _, p := range src {
			if ref.matches(p) {
				pick = append(pick, p)
			}
		}
		if len(pick) == n {
			return nil, fmt.Errorf("%s is not in %s", ref, from)
		}
	}
	var added []Package
	err = r.update(ctx, to, true, func(st *state) (bool, error) {
		added = added[:0]
		for _, p := range pick {
			if old, ok := st.pkgs[p.key()]; ok {
				if old.SHA256 == p.SHA256 {
					continue
				}
				return false, fmt.Errorf("%w: %s is already in %s with other contents (%s)", ErrConflict, p, to, old.Filename)
			}
			st.add(p)
			added = append(added, p)
		}
		return len(added) > 0, nil
	})
	return added, err
}

// Yank removes refs (every architecture) from dist's index. The pool files
// stay until Prune finds no dist referring to them. A ref that is not in
// the dist is an error and nothing changes.
func (r *Repo) Yank(ctx context.Context, dist string, refs []Ref) ([]Package, error) {
	var removed []Package
	err := r.update(ctx, dist, false, func(st *state) (bool, error) {
		removed = removed[:0]
		for _, ref := range refs {
			n := len(removed)
			for k, p := range st.pkgs {
				if ref.matches(p) {
					removed = append(removed, p)
					st.del(k)
				}
			}
			if len(removed) == n {
				return false, fmt.Errorf("%s is not in %s", ref, dist)
			}
		}
		return true, nil
	})
	SortPackages(removed)
	return removed, err
}

// PruneOptions says what Prune keeps.
type PruneOptions struct {
	// Keep is how many versions of each package each dist keeps, newest
	// first. Zero keeps every version (only unreferenced files go).
	Keep int
	// Grace protects unreferenced pool files and by-hash indexes younger
	// than this (a publish in flight, a client holding an older Release).
	Grace time.Duration
	// DryRun reports what would go and changes nothing.
	DryRun bool
}

// PruneReport lists what Prune removed (or would remove).
type PruneReport struct {
	Removed []string // "dist: name version arch" index entries
	Deleted []string // object keys
	Kept    []string // unreferenced objects still inside the grace period
	Dists   []string
}

// Dists lists the repository's dists (those with an InRelease).
func (r *Repo) Dists(ctx context.Context) ([]string, error) {
	var out []string
	err := r.Store.List(ctx, "dists/", func(o Object) error {
		rest := strings.TrimPrefix(o.Key, "dists/")
		if d, ok := strings.CutSuffix(rest, "/InRelease"); ok && !strings.Contains(d, "/") {
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list dists: %w", err)
	}
	return out, nil
}

// Prune drops all but the newest opts.Keep versions of each package from
// every dist, then deletes pool files no dist refers to and by-hash indexes
// no current Release lists, once they are older than opts.Grace. Files that
// this run itself dereferenced are kept for the next run, so the grace
// period also covers clients that read the previous Release.
func (r *Repo) Prune(ctx context.Context, opts PruneOptions) (*PruneReport, error) {
	dists, err := r.Dists(ctx)
	if err != nil {
		return nil, err
	}
	rep := &PruneReport{Dists: dists}
	justDropped := map[string]bool{}
	referenced := map[string]bool{}
	for _, dist := range dists {
		var drop []Package
		pick := func(st *state) {
			drop = drop[:0]
			groups := map[[2]string][]string{}
			for _, p := range st.pkgs {
				g := [2]string{p.Component, p.Name}
				if !slices.Contains(groups[g], p.Version) {
					groups[g] = append(groups[g], p.Version)
				}
			}
			for k, p := range st.pkgs {
				vs := groups[[2]string{p.Component, p.Name}]
				newer := 0
				for _, v := range vs {
					if debian.CompareVersions(v, p.Version) > 0 {
						newer++
					}
				}
				if opts.Keep > 0 && newer >= opts.Keep {
					drop = append(drop, p)
					st.del(k)
				}
			}
		}
		if opts.DryRun || opts.Keep == 0 {
			st, err := r.load(ctx, dist)
			if err != nil {
				return nil, err
			}
			pick(st)
		} else {
			var prev *Release
			err := r.update(ctx, dist, false, func(st *state) (bool, error) {
				prev = st.release
				pick(st)
				return len(drop) > 0, nil
			})
			if err != nil {
				return nil, err
			}
			if len(drop) > 0 && prev != nil {
				for _, f := range prev.Files {
					for _, k := range f.byHashKeys(dist) {
						justDropped[k] = true
					}
				}
			}
		}
		SortPackages(drop)
		for _, p := range drop {
			rep.Removed = append(rep.Removed, dist+": "+p.String())
			justDropped[p.Filename] = true
		}
		// What the dist refers to now (or would, after a dry run).
		st, err := r.load(ctx, dist)
		if err != nil {
			return nil, err
		}
		if opts.DryRun {
			pick(st)
		}
		for _, p := range st.pkgs {
			referenced[p.Filename] = true
		}
		for _, f := range st.release.Files {
			for _, k := range f.byHashKeys(dist) {
				referenced[k] = true
			}
		}
	}
	cutoff := r.now().Add(-opts.Grace)
	var victims []string
	for _, prefix := range []string{"pool/", "dists/"} {
		err := r.Store.List(ctx, prefix, func(o Object) error {
			if prefix == "dists/" && !strings.Contains(o.Key, "/by-hash/") || referenced[o.Key] {
				return nil
			}
			if justDropped[o.Key] || o.Modified.After(cutoff) {
				rep.Kept = append(rep.Kept, o.Key)
				return nil
			}
			victims = append(victims, o.Key)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
	}
	for _, key := range victims {
		if !opts.DryRun {
			if err := r.Store.Delete(ctx, key); err != nil {
				return rep, fmt.Errorf("delete %s: %w", key, err)
			}
		}
		rep.Deleted = append(rep.Deleted, key)
	}
	return rep, nil
}

// ErrVerify is returned by Verify when it found problems.
var ErrVerify = errors.New("repo: verification failed")

// VerifyReport is what Verify found.
type VerifyReport struct {
	Dists    []string
	Packages int      // index entries checked
	Files    int      // pool files checked
	Problems []string // make the repository unusable for some client
	Warnings []string // stale derived files a later change rewrites
}

// Verify checks every dist: the InRelease signature, every index listed
// against its checksums (by hash), that every package's pool file exists
// with the size and SHA256 the index gives, and whether the derived
// Release, Release.gpg and plain-path indexes match InRelease (warnings).
func (r *Repo) Verify(ctx context.Context) (*VerifyReport, error) {
	dists, err := r.Dists(ctx)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Dists: dists}
	kr := r.keyring()
	checked := map[string]string{} // pool key -> problem ("" when good)
	for _, dist := range dists {
		key := inReleaseKey(dist)
		data, _, err := getAll(ctx, r.Store, key)
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", key, err))
			continue
		}
		text, err := kr.VerifyInRelease(data)
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", key, err))
			continue
		}
		rel, err := ParseRelease(text)
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", key, err))
			continue
		}
		base := "dists/" + dist + "/"
		r.verifyDerived(ctx, rep, base, rel, kr)
		for _, f := range rel.Files {
			if !stored(f.Path) {
				continue
			}
			bkey := byHashKey(dist, f.Path, f.SHA256)
			b, _, err := getAll(ctx, r.Store, bkey)
			if err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s (%s): %v", bkey, f.Path, err))
				continue
			}
			if !matches(b, f) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s (%s): %v", bkey, f.Path, ErrCorrupt))
				continue
			}
			if !strings.HasSuffix(f.Path, "/Packages.gz") {
				continue
			}
			pf, hasPlain := rel.File(strings.TrimSuffix(f.Path, ".gz"))
			plain, err := gunzipAll(b, pf.Size)
			if err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s (%s): %v", bkey, f.Path, err))
				continue
			}
			if hasPlain && !matches(plain, pf) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s (%s): decompressed, %v", bkey, f.Path, ErrCorrupt))
				continue
			}
			comp, _, _ := strings.Cut(f.Path, "/")
			pkgs, err := ParsePackages(plain, comp)
			if err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", bkey, err))
				continue
			}
			for _, p := range pkgs {
				rep.Packages++
				problem, ok := checked[p.Filename]
				if !ok {
					problem = r.verifyPool(ctx, p)
					checked[p.Filename] = problem
					rep.Files++
				}
				if problem != "" {
					rep.Problems = append(rep.Problems, fmt.Sprintf("%s %s: %s", dist, p, problem))
				}
			}
		}
	}
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("%w: %d problems, first: %s", ErrVerify, len(rep.Problems), rep.Problems[0])
	}
	return rep, nil
}

func matches(b []byte, f ReleaseFile) bool {
	sum := sha256.Sum256(b)
	return int64(len(b)) == f.Size && hex.EncodeToString(sum[:]) == f.SHA256
}

func (r *Repo) verifyDerived(ctx context.Context, rep *VerifyReport, base string, rel *Release, kr Keyring) {
	stale := func(key, why string) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: %s (derived from InRelease; the next change rewrites it)", key, why))
	}
	relText, _, err := getAll(ctx, r.Store, base+"Release")
	if err != nil {
		stale(base+"Release", err.Error())
	} else if !bytes.Equal(relText, rel.Bytes()) {
		stale(base+"Release", "differs from InRelease")
	} else if sig, _, err := getAll(ctx, r.Store, base+"Release.gpg"); err != nil {
		stale(base+"Release.gpg", err.Error())
	} else if err := kr.VerifyDetached(relText, sig); err != nil {
		stale(base+"Release.gpg", err.Error())
	}
	for _, f := range rel.Files {
		if !stored(f.Path) {
			continue
		}
		b, _, err := getAll(ctx, r.Store, base+f.Path)
		if err != nil {
			stale(base+f.Path, err.Error())
		} else if !matches(b, f) {
			stale(base+f.Path, "differs from the index InRelease lists")
		}
	}
}

func (r *Repo) verifyPool(ctx context.Context, p Package) string {
	rc, o, err := r.Store.Get(ctx, p.Filename, "")
	if err != nil {
		return fmt.Sprintf("pool file %s: %v", p.Filename, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return fmt.Sprintf("pool file %s: %v", p.Filename, err)
	}
	if n != p.Size || (o.Size >= 0 && o.Size != p.Size) {
		return fmt.Sprintf("pool file %s has %d bytes, index says %d", p.Filename, n, p.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != p.SHA256 {
		return fmt.Sprintf("pool file %s has sha256 %s, index says %s", p.Filename, sum, p.SHA256)
	}
	return ""
}
