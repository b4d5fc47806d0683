package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aptfleet/aptfleet/internal/debian"
)

// Errors from changing a repository.
var (
	// ErrConflict: a pool file or an index entry already exists with other
	// contents. Nothing is overwritten.
	ErrConflict = errors.New("repo: conflict")
	// ErrContention: the commit lost to concurrent writers Config.Attempts
	// times in a row.
	ErrContention = errors.New("repo: too many concurrent writers")
	// ErrNoSigner: a change was asked of a Repo without a signing key.
	ErrNoSigner = errors.New("repo: no signing key")
)

// Steps of a change, reported to Repo.AfterStep.
const (
	StepPool     = "pool"     // every pool file is stored
	StepRead     = "read"     // the dist's InRelease and indexes are read
	StepIndexes  = "indexes"  // the new indexes are stored by hash
	StepCommit   = "commit"   // InRelease is replaced: the change is visible
	StepRelease  = "release"  // Release and Release.gpg are written
	StepPackages = "packages" // the plain-path Packages files are written
)

// Config holds a repository's settings.
type Config struct {
	// Origin and Label go into every Release a change writes. Default:
	// what the dist's Release has, "aptfleet" for a new dist.
	Origin string
	Label  string
	// Architectures always get a binary-<arch> index, even when empty; the
	// architectures of published packages are added. Default ["amd64"].
	Architectures []string
	// Component is where Publish puts packages when none is given.
	// Default "main".
	Component string
	// XZ also writes Packages.xz (xz of a 10,000-entry index costs seconds).
	// Default false.
	XZ bool
	// SHA512 also lists SHA512 checksums in Release. apt then fetches
	// indexes by their SHA512 name, so each index is stored under both
	// by-hash names. Default false: SHA256 only, which apt requires and
	// which halves the index uploads.
	SHA512 bool
	// ValidFor sets the validity period of the Release files a change
	// writes: Valid-Until = Date + ValidFor, after which apt and the puller
	// refuse the dist until it is signed again (Resign), so an old signed
	// index replayed later expires. 0 keeps the dist's current period (the
	// one its Release was signed with, Valid-Until - Date; none for a new
	// dist); a negative value drops Valid-Until. Default 0.
	ValidFor time.Duration
	// Attempts is how many times a change re-reads and retries after losing
	// the commit to a concurrent writer. Default 50.
	Attempts int
	// Backoff is the first retry's maximum delay; it doubles up to
	// MaxBackoff, and each delay is drawn uniformly below it (full jitter).
	// Defaults 20ms and 1s.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Window bounds the retention protocol's two races (docs/architecture.md,
	// "Retention protocol"): a change commits within Window of holding the
	// objects it newly references, or holds them again; a pruner deletes
	// within Window of claiming an object. Each side treats the other's
	// entries as live for 3 x Window, which also absorbs clock skew between
	// machines of up to Window. Default 2m.
	Window time.Duration
}

// checkRelease checks the fields Config puts into Release files.
func (c Config) checkRelease() error {
	for name, v := range map[string]string{"Origin": c.Origin, "Label": c.Label} {
		if strings.IndexFunc(v, func(c rune) bool { return c < ' ' || c == 0x7f }) >= 0 {
			return fmt.Errorf("%s %q: a Release field must fit on one line", name, v)
		}
	}
	return nil
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Origin: "aptfleet", Label: "aptfleet", Architectures: []string{"amd64"}, Component: "main",
		Attempts: 50, Backoff: 20 * time.Millisecond, MaxBackoff: time.Second, Window: 2 * time.Minute,
	}
}

// Repo is an apt repository in a Store. Changes (Publish, Promote, Yank,
// Prune) need Signer; reads check signatures with Keyring, or with the
// Signer's public key when Keyring is empty.
type Repo struct {
	Store   Store
	Signer  *Signer
	Keyring Keyring
	Config  Config
	// Now is the clock for Release dates and the prune grace period.
	// Default time.Now.
	Now func() time.Time
	// Log receives retries and repairs. Default: discard.
	Log *slog.Logger
	// NewKey lets a change that creates a dist sign it with a key the
	// repository does not trust yet, and adds that key to the trusted keys
	// (publish --new-key). Default false.
	NewKey bool
	// AfterStep, when set, is called after each step of a change (the Step
	// constants); tests use it to stop a publisher at a chosen point.
	AfterStep func(step string)

	// alsoAccept are keys whose signature on an existing dist a change
	// accepts besides the signer's own (the old key, while a rotation
	// finishes).
	alsoAccept Keyring
}

func (r *Repo) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Repo) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Repo) step(s string) {
	if r.AfterStep != nil {
		r.AfterStep(s)
	}
}

func (r *Repo) keyring() Keyring {
	if len(r.Keyring.entities) == 0 && r.Signer != nil {
		return r.Signer.Keyring()
	}
	return r.Keyring
}

func (r *Repo) config() Config {
	c, d := r.Config, DefaultConfig()
	if c.Origin == "" {
		c.Origin = d.Origin
	}
	if c.Label == "" {
		c.Label = d.Label
	}
	if len(c.Architectures) == 0 {
		c.Architectures = d.Architectures
	}
	if c.Component == "" {
		c.Component = d.Component
	}
	if c.Attempts <= 0 {
		c.Attempts = d.Attempts
	}
	if c.Backoff <= 0 {
		c.Backoff = d.Backoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.Window <= 0 {
		c.Window = d.Window
	}
	return c
}

// state is a dist as read at the start of a change.
type state struct {
	dist    string
	etag    string   // InRelease's; "" for a new dist
	release *Release // nil for a new dist
	pkgs    map[pkgKey]Package
	order   []pkgKey // index order; new entries go last
	deleted bool     // a key may have been deleted and added again
	// restored: indexes read from their plain-path copy because their
	// by-hash object was missing; the commit stores them again if unchanged.
	restored []string
	// newPool lists the pool files of entries added by this change: the
	// commit holds them (see hold) and ensure checks they exist.
	newPool []string
	// ensure makes sure the pool files keys exist after they were held;
	// gone are those a pruner may have deleted. Default: check each exists.
	ensure func(ctx context.Context, keys []string, gone map[string]bool) error
	// resign keeps the Release's own origin, label, components and
	// architectures: only Date and Valid-Until change.
	resign bool
	// inDoubt: the last attempt's commit may have been applied. A change
	// that finds its edit already made keeps that attempt's result and
	// reports no change, which ends the update as a success.
	inDoubt bool
}

// del removes the entry with key k.
func (s *state) del(k pkgKey) {
	delete(s.pkgs, k)
	s.deleted = true
}

// add inserts or replaces p.
func (s *state) add(p Package) {
	if _, ok := s.pkgs[p.key()]; !ok {
		s.order = append(s.order, p.key())
	}
	s.pkgs[p.key()] = p
	s.newPool = append(s.newPool, p.Filename)
}

// ordered returns the packages in index order: the order they were read
// in, then the ones added. Keeping it avoids sorting 10,000 entries by
// version on every publish; apt does not care about the order.
func (s *state) ordered() []Package {
	out := make([]Package, 0, len(s.pkgs))
	var seen map[pkgKey]bool
	if s.deleted {
		seen = make(map[pkgKey]bool, len(s.pkgs))
	}
	for _, k := range s.order {
		p, ok := s.pkgs[k]
		if !ok || seen != nil && seen[k] {
			continue
		}
		if seen != nil {
			seen[k] = true
		}
		out = append(out, p)
	}
	return out
}

func (r *Repo) load(ctx context.Context, dist string) (*state, error) {
	d, err := readDist(ctx, r.Store, r.keyring(), dist, func(string) bool { return true }, false, nil)
	if err != nil {
		return nil, err
	}
	st := &state{dist: dist, etag: d.ETag, release: d.Release, pkgs: make(map[pkgKey]Package, len(d.Packages)), restored: d.Restored}
	if len(d.Restored) > 0 {
		r.log().Warn("by-hash indexes were missing; read their plain-path copies, and this change stores them again", "dist", dist, "indexes", d.Restored)
	}
	for _, p := range d.Packages {
		if err := checkEntry(p); err != nil {
			return nil, fmt.Errorf("dists/%s: %w; refusing to carry it forward (yank it or repair the index)", dist, err)
		}
		st.add(p)
	}
	st.newPool = nil
	return st, nil
}

// checkEntry rejects an index entry a change must not write again: one
// whose name, version or pool path is not valid.
func checkEntry(p Package) error {
	if !debian.ValidPackageName(p.Name) {
		return fmt.Errorf("%w: index entry %q: invalid package name", ErrBadControl, p.String())
	}
	if _, err := debian.ParseVersion(p.Version); err != nil {
		return fmt.Errorf("%w: index entry %q: %v", ErrBadControl, p.String(), err)
	}
	if !strings.HasPrefix(p.Filename, "pool/") || strings.Contains(p.Filename, "..") || len(p.SHA256) != 64 {
		return fmt.Errorf("%w: index entry %q: bad Filename or SHA256", ErrBadControl, p.String())
	}
	return nil
}

// change edits a dist's packages; it reports whether anything changed.
type change func(st *state) (bool, error)

// update applies fn to dist and commits the result, re-reading and
// re-applying fn each time a concurrent writer commits first. A missing
// dist is created only if create is set.
func (r *Repo) update(ctx context.Context, dist string, create bool, fn change) error {
	if r.Signer == nil {
		return ErrNoSigner
	}
	cfg := r.config()
	if err := cfg.checkRelease(); err != nil {
		return err
	}
	// doubt is the error of the last commit when it may have been applied
	// after all: its answer was lost or was an error after the request went
	// out (ErrUnknownOutcome), or it lost with 412 to what may have been
	// its own earlier attempt. The next read decides by content: fn, told
	// through state.inDoubt, keeps the last attempt's result when it finds
	// that change already in.
	var doubt error
	for attempt := 1; ; attempt++ {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if doubt != nil && ctx.Err() != nil {
			// Interrupted or past the deadline with a commit in doubt: one
			// more read, so the report says what happened.
			rctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		}
		st, err := r.load(rctx, dist)
		cancel()
		if errors.Is(err, ErrNoDist) && create {
			st, err = &state{dist: dist, pkgs: map[pkgKey]Package{}}, nil
		}
		if err != nil {
			if doubt != nil && errors.Is(doubt, ErrUnknownOutcome) {
				return fmt.Errorf("%w; whether the change is in could not be checked (%v): see pkgbuild list", doubt, err)
			}
			return err
		}
		r.step(StepRead)
		st.inDoubt = doubt != nil
		changed, err := fn(st)
		if err != nil || !changed {
			return err // with doubt and no change: the change is in
		}
		if doubt != nil && ctx.Err() != nil {
			return fmt.Errorf("%w; it is not in dists/%s: nothing changed", doubt, dist)
		}
		err = r.commit(ctx, st, cfg)
		if errors.Is(err, errStaleHold) {
			r.log().Info("the commit came too long after the hold; holding again", "dist", dist)
			attempt--
			continue
		}
		var ce *commitError
		if errors.As(err, &ce) && (errors.Is(err, ErrUnknownOutcome) || errors.Is(err, ErrPrecondition)) {
			doubt = err
		} else {
			doubt = nil
		}
		if errors.As(err, &ce) && errors.Is(err, ErrUnknownOutcome) {
			r.log().Warn("the commit's answer was lost; reading the dist again to see whether it is in", "dist", dist, "err", err)
			if attempt >= cfg.Attempts {
				return err
			}
			continue
		}
		if !errors.Is(err, ErrPrecondition) {
			return err
		}
		if attempt >= cfg.Attempts {
			return fmt.Errorf("%w: dists/%s/InRelease changed under %d attempts in a row", ErrContention, dist, attempt)
		}
		limit := min(cfg.Backoff<<min(attempt-1, 20), cfg.MaxBackoff)
		delay := time.Duration(rand.Int64N(int64(limit)) + 1)
		r.log().Debug("commit lost to a concurrent writer; retrying", "dist", dist, "attempt", attempt, "delay", delay)
		select {
		case <-ctx.Done():
			if doubt == nil {
				return ctx.Err()
			}
		case <-time.After(delay):
		}
	}
}

// commit renders st's indexes, stores them by hash, and replaces InRelease
// if it still has the ETag st was read at. It returns an error wrapping
// ErrPrecondition when another writer committed first.
func (r *Repo) commit(ctx context.Context, st *state, cfg Config) error {
	pkgs := st.ordered()
	archs := slices.Clone(cfg.Architectures)
	comps := []string{cfg.Component}
	origin, label := cfg.Origin, cfg.Label
	if st.resign {
		archs, comps = nil, nil
		origin, label = st.release.Origin, st.release.Label
	}
	if st.release != nil {
		archs = append(archs, st.release.Architectures...)
		comps = append(comps, st.release.Components...)
	}
	for _, p := range pkgs {
		if p.Architecture != "all" {
			archs = append(archs, p.Architecture)
		}
		comps = append(comps, p.Component)
	}
	slices.Sort(archs)
	archs = slices.Compact(archs)
	slices.Sort(comps)
	comps = slices.Compact(comps)

	// Origin and Label stay what the dist has unless Config sets them.
	if st.release != nil {
		if r.Config.Origin == "" && st.release.Origin != "" {
			origin = st.release.Origin
		}
		if r.Config.Label == "" && st.release.Label != "" {
			label = st.release.Label
		}
	}
	rel := &Release{Origin: origin, Label: label, Suite: st.dist, Codename: st.dist,
		Date: releaseDate(r.now(), st.release), Architectures: archs, Components: comps}
	validFor := cfg.ValidFor
	if validFor == 0 && st.release != nil {
		validFor = st.release.ValidFor()
	}
	if validFor > 0 {
		rel.ValidUntil = rel.Date.Add(validFor)
	}
	var files []indexFile
	for _, comp := range comps {
		for _, arch := range archs {
			sel := make([]Package, 0, len(pkgs))
			for _, p := range pkgs {
				if p.Component == comp && (p.Architecture == arch || p.Architecture == "all") {
					sel = append(sel, p)
				}
			}
			fs, err := renderPackages(comp+"/binary-"+arch, sel, cfg.XZ, cfg.SHA512)
			if err != nil {
				return fmt.Errorf("render %s/binary-%s: %w", comp, arch, err)
			}
			files = append(files, fs...)
		}
	}
	// The objects this commit references that the dist did not: the new
	// indexes and the added entries' pool files. They are held before the
	// indexes go up, so no prune deletes them before the commit.
	var upload []indexFile
	var newKeys []string
	for _, f := range files {
		rel.Files = append(rel.Files, f.rf)
		if f.data == nil {
			continue
		}
		if st.release != nil {
			if old, ok := st.release.File(f.path); ok && old.SHA256 == f.rf.SHA256 && !slices.Contains(st.restored, f.path) {
				continue // unchanged: its by-hash object is already there
			}
		}
		upload = append(upload, f)
		newKeys = append(newKeys, f.rf.byHashKeys(st.dist)...)
	}
	newKeys = append(newKeys, st.newPool...)
	gone, heldAt, err := r.hold(ctx, newKeys)
	if err != nil {
		return err
	}
	if len(st.newPool) > 0 {
		goneSet := map[string]bool{}
		for _, k := range gone {
			goneSet[k] = true
		}
		ensure := st.ensure
		if ensure == nil {
			ensure = r.ensureExist
		}
		if err := ensure(ctx, st.newPool, goneSet); err != nil {
			return err
		}
	}
	for _, f := range upload {
		for _, key := range f.rf.byHashKeys(st.dist) {
			if _, err := r.Store.Put(ctx, key, bytes.NewReader(f.data), int64(len(f.data)), PutOptions{ContentType: contentType(f.path)}); err != nil {
				return fmt.Errorf("upload %s: %w", key, err)
			}
		}
	}
	r.step(StepIndexes)

	release := rel.Bytes()
	inRelease, detached, err := r.Signer.Sign(release)
	if err != nil {
		return err
	}
	if r.now().Sub(heldAt) >= cfg.Window {
		return errStaleHold
	}
	key := inReleaseKey(st.dist)
	opts := PutOptions{IfMatch: st.etag, IfNoneMatch: st.etag == "", ContentType: "text/plain"}
	o, err := r.Store.Put(ctx, key, bytes.NewReader(inRelease), int64(len(inRelease)), opts)
	if err != nil {
		return &commitError{fmt.Errorf("commit %s: %w", key, err)}
	}
	r.step(StepCommit)
	// The change is committed: a failure from here on is only logged, since
	// the derived files it leaves stale are rewritten by the next change.
	if err := r.writeDerived(ctx, st.dist, o.ETag, release, detached, files); err != nil {
		r.log().Warn("committed, but the derived files were not all written; the next change rewrites them", "dist", st.dist, "err", err)
	}
	return nil
}

// commitError is a failed write of InRelease, as opposed to a failure
// before it (which leaves the dist as it was).
type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// errStaleHold: the commit would come more than Config.Window after the
// hold; the change holds again.
var errStaleHold = errors.New("repo: hold expired before the commit")

// ensureExist checks that every pool file in keys exists.
func (r *Repo) ensureExist(ctx context.Context, keys []string, _ map[string]bool) error {
	return parallel(len(keys), func(i int) error {
		if _, err := r.Store.Head(ctx, keys[i]); err != nil {
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("%w: pool file %s is gone (pruned after its dist dropped it)", ErrNotFound, keys[i])
			}
			return fmt.Errorf("check %s: %w", keys[i], err)
		}
		return nil
	})
}

// releaseDate is the Date of a new Release: now, to the second, and never
// before the Date of the Release it replaces, even when this writer's clock
// is behind, since the puller refuses a Date older than one it accepted. It
// is not pushed past the previous one either: apt refuses a Date in its
// future (Acquire::Check-Date), and many changes in one second would get
// there.
func releaseDate(now time.Time, prev *Release) time.Time {
	d := now.UTC().Truncate(time.Second)
	if prev != nil && d.Before(prev.Date) {
		d = prev.Date.UTC()
	}
	return d
}

func contentType(path string) string {
	switch {
	case strings.HasSuffix(path, ".gz"):
		return "application/gzip"
	case strings.HasSuffix(path, ".xz"):
		return "application/x-xz"
	case strings.HasSuffix(path, ".deb"):
		return "application/vnd.debian.binary-package"
	}
	return "text/plain"
}

// writeDerived writes Release, Release.gpg and the plain-path indexes of the
// commit whose InRelease has etag. Clients and Verify rely on InRelease and
// by-hash names only, so these files may briefly lag; to keep a slow writer
// from leaving an older Release behind a newer InRelease, it skips the write
// when InRelease has moved on, and re-derives from the newest InRelease when
// InRelease moved while it wrote.
func (r *Repo) writeDerived(ctx context.Context, dist, etag string, release, detached []byte, files []indexFile) error {
	cur, err := r.Store.Head(ctx, inReleaseKey(dist))
	if err != nil || cur.ETag != etag {
		return nil // a newer commit writes its own derived files
	}
	base := "dists/" + dist + "/"
	if err := r.put(ctx, base+"Release", release); err != nil {
		return err
	}
	if err := r.put(ctx, base+"Release.gpg", detached); err != nil {
		return err
	}
	r.step(StepRelease)
	for _, f := range files {
		if f.data == nil {
			continue
		}
		if err := r.put(ctx, base+f.path, f.data); err != nil {
			return err
		}
	}
	r.step(StepPackages)
	for i := 0; i < 3; i++ {
		cur, err := r.Store.Head(ctx, inReleaseKey(dist))
		if err != nil || cur.ETag == etag {
			return nil
		}
		// Another writer committed while these were written; its derived
		// files may have gone up before ours. Derive from the newest state.
		r.log().Debug("InRelease moved while writing derived files; re-deriving", "dist", dist)
		if etag, err = r.rederive(ctx, dist); err != nil {
			return nil // the next change repairs them
		}
	}
	return nil
}

func (r *Repo) put(ctx context.Context, key string, data []byte) error {
	if _, err := r.Store.Put(ctx, key, bytes.NewReader(data), int64(len(data)), PutOptions{ContentType: contentType(key)}); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	return nil
}

// rederive rewrites dist's derived files (Release, Release.gpg, the plain-path
// indexes) from its current InRelease and by-hash indexes. It returns the
// ETag of the InRelease it derived from.
func (r *Repo) rederive(ctx context.Context, dist string) (string, error) {
	if r.Signer == nil {
		return "", ErrNoSigner
	}
	data, o, err := getAll(ctx, r.Store, inReleaseKey(dist))
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("%w: %s", ErrNoDist, dist)
	}
	if err != nil {
		return "", err
	}
	text, err := r.keyring().VerifyInRelease(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", inReleaseKey(dist), err)
	}
	rel, err := ParseRelease(text)
	if err != nil {
		return "", err
	}
	release := rel.Bytes()
	_, detached, err := r.Signer.Sign(release)
	if err != nil {
		return "", err
	}
	base := "dists/" + dist + "/"
	if err := r.put(ctx, base+"Release", release); err != nil {
		return "", err
	}
	if err := r.put(ctx, base+"Release.gpg", detached); err != nil {
		return "", err
	}
	for _, f := range rel.Files {
		if !stored(f.Path) {
			continue
		}
		b, _, _, err := readIndex(ctx, r.Store, dist, f)
		if err != nil {
			return "", err
		}
		if err := r.put(ctx, base+f.Path, b); err != nil {
			return "", err
		}
	}
	return o.ETag, nil
}

// localDeb is a .deb file to publish.
type localDeb struct {
	path string
	deb  *Deb
	key  string
}

// Publish adds the .deb files at paths to dist's component (Config.Component
// when empty), creating the dist if needed. Every file is read and checked
// before anything is written. Pool files are created only if absent: the
// same file name with the same bytes is accepted (publishing again is a
// no-op), other bytes are ErrConflict. It returns the index entries added.
func (r *Repo) Publish(ctx context.Context, dist, component string, paths []string) ([]Package, error) {
	if r.Signer == nil {
		return nil, ErrNoSigner
	}
	if component == "" {
		component = r.config().Component
	}
	if err := debian.CheckDist(dist); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	if err := debian.CheckDist(component); err != nil {
		return nil, fmt.Errorf("component: %w", err)
	}
	debs := make([]localDeb, len(paths))
	if err := parallel(len(paths), func(i int) error {
		d, err := readDebFile(paths[i])
		if err != nil {
			return err
		}
		debs[i] = localDeb{path: paths[i], deb: d, key: PoolPath(component, d.Control)}
		return nil
	}); err != nil {
		return nil, err
	}
	seen := map[string]string{}
	for _, d := range debs {
		if prev, ok := seen[d.key]; ok {
			return nil, fmt.Errorf("%s: same package as %s", d.path, prev)
		}
		seen[d.key] = d.path
	}
	if len(debs) == 0 {
		return nil, errors.New("no .deb files given")
	}
	if err := r.checkSigner(ctx, dist, true); err != nil {
		return nil, err
	}
	if err := parallel(len(debs), func(i int) error { return r.putPool(ctx, debs[i]) }); err != nil {
		return nil, err
	}
	r.step(StepPool)
	pooled := r.now()
	byKey := map[string]localDeb{}
	for _, d := range debs {
		byKey[d.key] = d
	}
	// After the hold, store again what a pruner may have deleted since the
	// pool step: what the ledger says, or everything when the pool step is
	// older than the ledger's memory of deletions.
	ensure := func(ctx context.Context, keys []string, gone map[string]bool) error {
		stale := r.now().Sub(pooled) >= r.config().Window
		return parallel(len(keys), func(i int) error {
			d, ok := byKey[keys[i]]
			if !ok || !gone[keys[i]] && !stale {
				return nil
			}
			return r.putPool(ctx, d)
		})
	}
	pkgs := make([]Package, len(debs))
	for i, d := range debs {
		pkgs[i] = newPackage(component, d.key, d.deb)
	}
	var added []Package
	err := r.update(ctx, dist, true, func(st *state) (bool, error) {
		st.ensure = ensure
		var changed bool
		var err error
		added, changed, err = addEntries(st, pkgs, added)
		return changed, err
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}

// addEntries adds pkgs to st, skipping those it already has with the same
// contents. It returns the entries this change added, and whether st
// changed. When st.inDoubt, entries found present that prev (the last
// attempt's result) added count as added: that attempt's commit is in.
func addEntries(st *state, pkgs, prev []Package) (added []Package, changed bool, err error) {
	for _, p := range pkgs {
		if old, ok := st.pkgs[p.key()]; ok {
			if old.SHA256 != p.SHA256 {
				return nil, false, fmt.Errorf("%w: %s is already in %s with other contents (%s)", ErrConflict, p, st.dist, old.Filename)
			}
			if st.inDoubt && slices.ContainsFunc(prev, func(q Package) bool { return q.key() == p.key() }) {
				added = append(added, p)
			}
			continue
		}
		st.add(p)
		added = append(added, p)
		changed = true
	}
	return added, changed, nil
}

func readDebFile(path string) (*Deb, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := ReadDeb(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// putPool stores a .deb create-only; an identical existing file is fine.
// An existing file that a prune deletes before it could be compared is
// stored again.
func (r *Repo) putPool(ctx context.Context, d localDeb) error {
	for attempt := 0; ; attempt++ {
		err := r.putPoolOnce(ctx, d)
		if !errors.Is(err, ErrNotFound) || attempt == 3 {
			return err
		}
	}
}

func (r *Repo) putPoolOnce(ctx context.Context, d localDeb) error {
	f, err := os.Open(d.path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = r.Store.Put(ctx, d.key, f, d.deb.Size, PutOptions{IfNoneMatch: true, ContentType: contentType(d.key)})
	if !errors.Is(err, ErrPrecondition) {
		if err != nil {
			return fmt.Errorf("upload %s: %w", d.key, err)
		}
		return nil
	}
	sum, err := objectSHA256(ctx, r.Store, d.key)
	if err != nil {
		return err
	}
	if sum != d.deb.SHA256 {
		return fmt.Errorf("%w: %s already exists with other contents (sha256 %s, %s has %s)", ErrConflict, d.key, sum, d.path, d.deb.SHA256)
	}
	return nil
}

func objectSHA256(ctx context.Context, s Store, key string) (string, error) {
	rc, _, err := s.Get(ctx, key, "")
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// parallel runs fn(0..n-1) on up to 8 goroutines and returns the first
// error (by index), after every call has returned.
func parallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return firstErr(errs)
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
