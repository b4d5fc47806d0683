package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// RepairReport says what Repair restored and what it could not.
type RepairReport struct {
	Dists    []string
	Restored []string // "key: how"
	// Unrestorable lists what is still broken, each with what would fix it.
	Unrestorable []string
}

// ErrUnrestorable is returned by Repair when something stays broken.
var ErrUnrestorable = errors.New("repo: not everything could be restored")

// Repair restores what can be restored in dists (every dist when none is
// given): an InRelease with a bad signature or none, from a Release whose
// detached signature checks (re-signed with the Signer); a missing or
// damaged by-hash index, from its plain-path copy when that matches the
// checksum InRelease lists; and the derived Release, Release.gpg and
// plain-path indexes. What it cannot restore (an index with no good copy,
// a missing pool file) is listed with what would fix it.
func (r *Repo) Repair(ctx context.Context, dists ...string) (*RepairReport, error) {
	if r.Signer == nil {
		return nil, ErrNoSigner
	}
	// Only the trusted set is checked: a dist to repair may have an
	// InRelease no key verifies.
	if err := r.checkSigner(ctx, "", false); err != nil {
		return nil, err
	}
	if len(dists) == 0 {
		var err error
		if dists, err = r.Dists(ctx); err != nil {
			return nil, err
		}
	}
	rep := &RepairReport{Dists: dists}
	for _, dist := range dists {
		if err := CheckDist(dist); err != nil {
			return nil, fmt.Errorf("dist: %w", err)
		}
		if err := r.repairDist(ctx, dist, rep); err != nil {
			return rep, err
		}
	}
	if len(rep.Unrestorable) > 0 {
		return rep, fmt.Errorf("%w: %d left, first: %s", ErrUnrestorable, len(rep.Unrestorable), rep.Unrestorable[0])
	}
	return rep, nil
}

func (r *Repo) repairDist(ctx context.Context, dist string, rep *RepairReport) error {
	kr := r.keyring()
	key := inReleaseKey(dist)
	base := "dists/" + dist + "/"
	data, o, err := getAll(ctx, r.Store, key)
	var text []byte
	switch {
	case err == nil:
		text, err = kr.VerifyInRelease(data)
	case errors.Is(err, ErrNotFound):
		o.ETag = ""
	default:
		return err
	}
	if err != nil {
		// InRelease missing or its signature bad: a Release whose detached
		// signature checks says what it should have said.
		relText, _, rerr := getAll(ctx, r.Store, base+"Release")
		var sig []byte
		if rerr == nil {
			sig, _, rerr = getAll(ctx, r.Store, base+"Release.gpg")
		}
		if rerr == nil {
			rerr = kr.VerifyDetached(relText, sig)
		}
		if rerr != nil {
			rep.Unrestorable = append(rep.Unrestorable, fmt.Sprintf("%s: %v, and no Release with a good signature to restore it from (publish to the dist again, or delete it)", key, err))
			return nil
		}
		inRelease, _, serr := r.Signer.Sign(relText)
		if serr != nil {
			return serr
		}
		if _, err := r.Store.Put(ctx, key, bytes.NewReader(inRelease), int64(len(inRelease)),
			PutOptions{IfMatch: o.ETag, IfNoneMatch: o.ETag == "", ContentType: "text/plain"}); err != nil {
			return fmt.Errorf("restore %s: %w", key, err)
		}
		rep.Restored = append(rep.Restored, key+": re-signed from Release (its detached signature checks)")
		text = relText
	}
	rel, err := ParseRelease(text)
	if err != nil {
		rep.Unrestorable = append(rep.Unrestorable, fmt.Sprintf("%s: %v (publish to the dist again, or delete it)", key, err))
		return nil
	}
	indexesGood := true
	for _, f := range rel.Files {
		if !stored(f.Path) {
			continue
		}
		var bad []string
		for _, k := range f.byHashKeys(dist) {
			b, _, err := getAll(ctx, r.Store, k)
			if err != nil || !matches(b, f) {
				bad = append(bad, k)
			}
		}
		if len(bad) == 0 {
			continue
		}
		plain, _, perr := getAll(ctx, r.Store, base+f.Path)
		if perr != nil || !matches(plain, f) {
			indexesGood = false
			rep.Unrestorable = append(rep.Unrestorable, fmt.Sprintf("%s (%s): missing or damaged, and no copy with its checksum at %s (publish to the dist again: the next change writes a new index)", bad[0], f.Path, base+f.Path))
			continue
		}
		if _, _, err := r.hold(ctx, bad); err != nil {
			return err
		}
		for _, k := range bad {
			if err := r.put(ctx, k, plain); err != nil {
				return err
			}
			rep.Restored = append(rep.Restored, k+": from "+base+f.Path+" (same checksum)")
		}
	}
	if indexesGood {
		if _, err := r.rederive(ctx, dist); err != nil {
			return fmt.Errorf("rewrite the derived files of %s: %w", dist, err)
		}
	}
	// Pool files cannot be restored from anything in the repository.
	d, err := readDist(ctx, r.Store, kr, dist, func(string) bool { return true }, true, nil)
	if err != nil {
		return nil // already listed above
	}
	seen := map[string]bool{}
	for _, p := range d.Packages {
		if seen[p.Filename] {
			continue
		}
		seen[p.Filename] = true
		if _, err := r.Store.Head(ctx, p.Filename); errors.Is(err, ErrNotFound) {
			rep.Unrestorable = append(rep.Unrestorable, fmt.Sprintf("%s: pool file of %s %s is missing (publish that .deb again, or yank %s=%s from %s)", p.Filename, dist, p, p.Name, p.Version, dist))
		} else if err != nil {
			return err
		}
	}
	return nil
}
