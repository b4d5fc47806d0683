package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
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
	d, err := readDist(ctx, r.Store, r.keyring(), dist, func(string) bool { return true }, true, nil)
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
	if err := r.checkSigner(ctx, to, true); err != nil {
		return nil, err
	}
	var added []Package
	err = r.update(ctx, to, true, func(st *state) (bool, error) {
		var changed bool
		var err error
		added, changed, err = addEntries(st, pick, added)
		return changed, err
	})
	return added, err
}

// Yank removes refs (every architecture) from dist's index. The pool files
// stay until Prune finds no dist referring to them. A ref that is not in
// the dist is an error and nothing changes.
func (r *Repo) Yank(ctx context.Context, dist string, refs []Ref) ([]Package, error) {
	if err := r.checkSigner(ctx, dist, false); err != nil {
		return nil, err
	}
	var removed []Package
	err := r.update(ctx, dist, false, func(st *state) (bool, error) {
		var absent []Ref
		var changed bool
		removed, absent, changed = removeEntries(st, refs, removed)
		if len(absent) > 0 {
			return false, fmt.Errorf("%s is not in %s", absent[0], dist)
		}
		return changed, nil
	})
	SortPackages(removed)
	return removed, err
}

// Resign signs dist's current state again with a new Date and, when the dist
// has a validity period (or Config.ValidFor gives one), a new Valid-Until:
// the same packages, indexes, components, architectures, origin and label.
// A scheduled job runs it so a dist that does not change stays valid. It
// returns the Release committed.
func (r *Repo) Resign(ctx context.Context, dist string) (*Release, error) {
	if err := debian.CheckDist(dist); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	if err := r.checkSigner(ctx, dist, false); err != nil {
		return nil, err
	}
	err := r.update(ctx, dist, false, func(st *state) (bool, error) {
		st.resign = true
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	d, err := readDist(ctx, r.Store, r.keyring(), dist, func(string) bool { return false }, false, nil)
	if err != nil {
		return nil, err
	}
	return d.Release, nil
}

// PruneOptions says what Prune keeps.
type PruneOptions struct {
	// Keep is how many versions of each package each dist keeps, newest
	// first; the version before the newest (the rollback target) is kept
	// too. Zero keeps every version (only unreferenced files go).
	Keep int
	// InUse lists, per dist, versions that must stay whatever their rank
	// (the versions live hosts run).
	InUse map[string][]Ref
	// Grace is how long an object must have been seen unreferenced before
	// it is deleted (a client holding an older Release, a host that has
	// not downloaded yet). Files this run itself dereferenced always wait
	// for a later run.
	Grace time.Duration
	// DryRun reports what would go and changes nothing.
	DryRun bool
}

// PruneReport lists what Prune removed (or would remove).
type PruneReport struct {
	Removed []string // "dist: name version arch" index entries
	Deleted []string // object keys
	Kept    []string // unreferenced objects kept: inside the grace period, held by a change, or just dereferenced
	Dists   []string
	// Skipped lists the dists that could not be read ("dist: why"); every
	// object they may reference was kept.
	Skipped []string
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

// keepPick removes from st the entries retention does not keep and returns
// them.
func keepPick(st *state, opts PruneOptions) []Package {
	if opts.Keep <= 0 {
		return nil
	}
	keep := max(opts.Keep, 2) // the newest Keep, and the rollback target
	groups := map[[2]string][]string{}
	for _, p := range st.pkgs {
		g := [2]string{p.Component, p.Name}
		if !slices.Contains(groups[g], p.Version) {
			groups[g] = append(groups[g], p.Version)
		}
	}
	var drop []Package
	for k, p := range st.pkgs {
		vs := groups[[2]string{p.Component, p.Name}]
		newer := 0
		for _, v := range vs {
			if debian.CompareVersions(v, p.Version) > 0 {
				newer++
			}
		}
		if newer < keep {
			continue
		}
		if slices.ContainsFunc(opts.InUse[st.dist], func(ref Ref) bool { return ref.matches(p) }) {
			continue
		}
		drop = append(drop, p)
		st.del(k)
	}
	return drop
}

// Prune drops from every dist what retention does not keep (all but the
// newest opts.Keep versions of each package, the rollback target, and the
// versions in opts.InUse), then deletes pool files no dist refers to and
// by-hash indexes no current Release lists, once they have been seen
// unreferenced for opts.Grace. It follows the retention protocol
// (docs/architecture.md): an object a change has held is never deleted,
// and a change never commits a reference to an object being deleted. A
// dist that cannot be read is skipped with its reason in the report, and
// everything it may refer to is kept.
func (r *Repo) Prune(ctx context.Context, opts PruneOptions) (*PruneReport, error) {
	cfg := r.config()
	if !opts.DryRun {
		if err := r.checkSigner(ctx, "", false); err != nil {
			return nil, err
		}
	}
	dists, err := r.Dists(ctx)
	if err != nil {
		return nil, err
	}
	rep := &PruneReport{Dists: dists}
	justDropped := map[string]bool{}
	broken := map[string]error{}
	for _, dist := range dists {
		var drop []Package
		var prev *Release
		if opts.DryRun || opts.Keep == 0 {
			st, err := r.load(ctx, dist)
			if err != nil {
				broken[dist] = err
				continue
			}
			drop = keepPick(st, opts)
		} else {
			err := r.update(ctx, dist, false, func(st *state) (bool, error) {
				d := keepPick(st, opts)
				if st.inDoubt && len(d) == 0 && len(drop) > 0 {
					return false, nil // the last attempt's commit is in
				}
				prev, drop = st.release, d
				return len(drop) > 0, nil
			})
			if err != nil {
				if unreadable(err) {
					broken[dist] = err
					continue
				}
				return nil, err
			}
		}
		if len(drop) > 0 && prev != nil {
			for _, f := range prev.Files {
				for _, k := range f.byHashKeys(dist) {
					justDropped[k] = true
				}
			}
		}
		SortPackages(drop)
		for _, p := range drop {
			rep.Removed = append(rep.Removed, dist+": "+p.String())
			justDropped[p.Filename] = true
		}
	}

	// Every object prune may delete, listed before the dists are read:
	// what is stored after the listing is not a candidate.
	objects := map[string]Object{}
	for _, prefix := range []string{"pool/", "dists/"} {
		err := r.Store.List(ctx, prefix, func(o Object) error {
			if prefix == "pool/" || strings.Contains(o.Key, "/by-hash/") {
				objects[o.Key] = o
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
	}

	// What the dists refer to now (or would, after a dry run), read after
	// readAt.
	readAt := r.now()
	referenced := map[string]bool{}
	protect := map[string]bool{} // prefixes kept whole: "dists/<broken>/", "pool/"
	for _, dist := range dists {
		if broken[dist] != nil {
			continue
		}
		st, err := r.load(ctx, dist)
		if err != nil {
			if !unreadable(err) {
				return nil, err
			}
			broken[dist] = err
			continue
		}
		if opts.DryRun {
			keepPick(st, opts)
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
	for _, dist := range sortedKeys(broken) {
		err := broken[dist]
		rep.Skipped = append(rep.Skipped, dist+": "+oneLine(err))
		r.log().Warn("prune skips a dist it cannot read and keeps everything it may refer to", "dist", dist, "err", oneLine(err))
		protect["dists/"+dist+"/"] = true
		if err := r.refsOfBroken(ctx, dist, referenced); err != nil {
			r.log().Warn("cannot tell which pool files a broken dist refers to; keeping the whole pool", "dist", dist, "err", err)
			protect["pool/"] = true
		}
	}
	protected := func(key string) bool {
		for p := range protect {
			if strings.HasPrefix(key, p) {
				return true
			}
		}
		return false
	}

	m, _, err := readMarks(ctx, r.Store)
	if err != nil {
		return nil, err
	}
	l, _, err := readLedger(ctx, r.Store)
	if err != nil {
		return nil, err
	}
	seen := map[string]time.Time{} // unreferenced -> first seen so
	var candidates []string
	for _, key := range sortedKeys(objects) {
		if referenced[key] || protected(key) {
			continue
		}
		first, ok := m.Unreferenced[key]
		if !ok || first.After(readAt) {
			first = readAt
		}
		if h, ok := l.Holds[key]; ok && h.After(first) {
			first = h // held since: maybe referenced in between
		}
		seen[key] = first
		if justDropped[key] || readAt.Sub(first) < opts.Grace || liveHold(l, key, readAt, cfg.Window) {
			rep.Kept = append(rep.Kept, key)
			continue
		}
		candidates = append(candidates, key)
	}
	if opts.DryRun {
		rep.Deleted = candidates
		return rep, nil
	}

	// Claim the candidates no change holds, in one conditional write of
	// the ledger; a change that held one meanwhile makes the write fail,
	// and the next try sees its hold.
	var victims []string
	var claimedAt time.Time
	tooSlow := false
	err = r.editLedger(ctx, func(l *ledger, now time.Time) (bool, error) {
		victims = victims[:0]
		if now.Sub(readAt) >= cfg.Window {
			tooSlow = true
			return false, nil
		}
		for _, key := range candidates {
			if liveHold(l, key, readAt, cfg.Window) {
				continue
			}
			victims = append(victims, key)
			l.Claims[key] = now
		}
		claimedAt = now
		return len(victims) > 0, nil
	})
	if err != nil {
		return rep, fmt.Errorf("claim: %w", err)
	}
	if tooSlow {
		r.log().Warn("prune read the dists too long before it could claim; nothing deleted this run", "window", cfg.Window)
		victims = nil
	}
	for _, key := range candidates {
		if !slices.Contains(victims, key) {
			rep.Kept = append(rep.Kept, key)
		}
	}
	r.step(StepClaim)

	// Delete within the window of the claim; what is left waits for the
	// next run.
	var deleted []string
	var delErr error
	for _, key := range victims {
		if r.now().Sub(claimedAt) >= cfg.Window {
			r.log().Warn("prune's deletion window ran out; the rest waits for the next run", "left", len(victims)-len(deleted))
			break
		}
		if err := r.Store.Delete(ctx, key); err != nil {
			delErr = fmt.Errorf("delete %s: %w", key, err)
			break
		}
		deleted = append(deleted, key)
		delete(seen, key)
	}
	rep.Deleted = deleted
	if len(victims) > 0 {
		// Release the claims, recording the deletions, so waiting changes
		// go on now rather than when the claims expire.
		err := r.editLedger(context.WithoutCancel(ctx), func(l *ledger, now time.Time) (bool, error) {
			for _, key := range victims {
				if c, ok := l.Claims[key]; ok && !c.Before(claimedAt) {
					delete(l.Claims, key)
				}
			}
			for _, key := range deleted {
				l.Deleted[key] = now
			}
			return true, nil
		})
		if err != nil {
			r.log().Warn("could not release prune's claims; they expire by themselves", "err", err)
		}
	}
	if err := r.writeMarks(ctx, seen); err != nil && delErr == nil {
		delErr = err
	}
	return rep, delErr
}

// StepClaim: prune has claimed what it will delete (reported to AfterStep).
const StepClaim = "claim"

// liveHold reports whether a change may still commit a reference to key
// after a read of the dists that started at readAt.
func liveHold(l *ledger, key string, readAt time.Time, window time.Duration) bool {
	h, ok := l.Holds[key]
	return ok && readAt.Sub(h) < 3*window
}

// unreadable reports whether a dist that failed to load with err is to be
// skipped (bad signature, malformed or missing index, a failing read)
// rather than end the prune (cancelled, out of time). Skipping is the safe
// side: everything the dist may refer to is kept.
func unreadable(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// refsOfBroken adds to referenced every pool file any index stored under
// a dist it cannot read may name. It fails, so that the whole pool is
// kept, when some index object cannot be decompressed, or when an index
// the dist's InRelease lists (signature unchecked) is not among them.
func (r *Repo) refsOfBroken(ctx context.Context, dist string, referenced map[string]bool) error {
	var keys []string
	err := r.Store.List(ctx, "dists/"+dist+"/", func(o Object) error {
		if strings.Contains(o.Key, "/by-hash/") || strings.Contains(path.Base(o.Key), "Packages") {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	have := map[string]bool{} // sha256 of the index objects read
	for _, key := range keys {
		data, _, err := getAll(ctx, r.Store, key)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		have[hex.EncodeToString(sum[:])] = true
		plain, err := gunzipAll(data, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		for _, line := range bytes.Split(plain, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("Filename:")); ok {
				referenced[string(bytes.TrimSpace(v))] = true
			}
		}
	}
	data, _, err := getAll(ctx, r.Store, inReleaseKey(dist))
	if err != nil {
		return err
	}
	text, _, _ := bytes.Cut(data, []byte("-----BEGIN PGP SIGNATURE-----"))
	if _, after, ok := bytes.Cut(text, []byte("\n\n")); ok {
		text = after
	}
	rel, err := ParseRelease(text)
	if err != nil {
		return fmt.Errorf("%s: %w", inReleaseKey(dist), err)
	}
	for _, f := range rel.Files {
		if strings.HasSuffix(f.Path, ".gz") && !have[f.SHA256] {
			return fmt.Errorf("%s lists %s with sha256 %s, which is nowhere", inReleaseKey(dist), f.Path, f.SHA256)
		}
	}
	return nil
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// ErrVerify is returned by Verify when it found problems.
var ErrVerify = errors.New("repo: verification failed")

// VerifyReport is what Verify found.
type VerifyReport struct {
	Dists    []string `json:"dists"`
	Packages int      `json:"packages"` // index entries checked
	Files    int      `json:"files"`    // pool files checked
	Problems []string `json:"problems"` // make the repository unusable for some client
	Warnings []string `json:"warnings"` // stale derived files a later change rewrites
	// Repairable: some problem is one Repair restores.
	Repairable bool `json:"repairable"`
	// Signers lists, per dist, every signature of its InRelease.
	Signers map[string][]Signature `json:"signers"`
}

// ExpiryWarning is how long before a signing key expires verify warns.
const ExpiryWarning = 30 * 24 * time.Hour

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
	if len(dists) == 0 {
		rep.Problems = append(rep.Problems, "no dist found (no dists/*/InRelease): is the repository address right?")
		return rep, fmt.Errorf("%w: %s", ErrVerify, rep.Problems[0])
	}
	kr := r.keyring()
	// pool file, size and checksum -> problem ("" when good): each dist's
	// claim about a file is checked, not just the first one read.
	checked := map[string]string{}
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
		if sigs, err := kr.Signatures(data); err == nil {
			if rep.Signers == nil {
				rep.Signers = map[string][]Signature{}
			}
			rep.Signers[dist] = sigs
			for _, s := range sigs {
				if s.Good && !s.KeyExpires.IsZero() && s.KeyExpires.Sub(r.now()) < ExpiryWarning {
					rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: signing key %s expires %s (in less than %d days): rotate it with `pkgbuild key rotate`",
						key, s.Fingerprint, s.KeyExpires.UTC().Format(time.RFC3339), int(ExpiryWarning/(24*time.Hour))))
				}
			}
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
			if err == nil && !matches(b, f) {
				err = ErrCorrupt
			}
			if err != nil {
				problem := fmt.Sprintf("%s (%s): %v", bkey, f.Path, err)
				if _, _, restored, rerr := readIndex(ctx, r.Store, dist, f); rerr == nil && restored {
					problem += " (its plain-path copy matches: pkgbuild repair restores it)"
					rep.Repairable = true
				}
				rep.Problems = append(rep.Problems, problem)
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
				claim := fmt.Sprintf("%s %d %s", p.Filename, p.Size, p.SHA256)
				problem, ok := checked[claim]
				if !ok {
					problem = r.verifyPool(ctx, p)
					checked[claim] = problem
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
		// Release is current and its signature is bad: a client that
		// reads Release and Release.gpg (not InRelease) refuses the dist.
		rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v (Release matches InRelease)", base+"Release.gpg", err))
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
