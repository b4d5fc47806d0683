package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aptfleet/aptfleet/internal/debian"
)

// ErrWouldEmpty is returned by Rollback when the change would leave the dist
// with no version of the package.
var ErrWouldEmpty = errors.New("would leave no version")

// Remove is Yank made idempotent: it removes refs (every architecture) from
// dist's index and returns what it removed and the refs that were already
// absent. Nothing is written when every ref was absent.
func (r *Repo) Remove(ctx context.Context, dist string, refs []Ref) (removed []Package, absent []Ref, err error) {
	if err := r.checkSigner(ctx, dist, false); err != nil {
		return nil, nil, err
	}
	err = r.update(ctx, dist, false, func(st *state) (bool, error) {
		var changed bool
		removed, absent, changed = removeEntries(st, refs, removed)
		return changed, nil
	})
	SortPackages(removed)
	return removed, absent, err
}

// removeEntries removes every entry of refs from st. It returns the entries
// this change removed, the refs st did not have, and whether st changed.
// When st.inDoubt, a ref st no longer has that prev (the last attempt's
// result) removed counts as removed: that attempt's commit is in.
func removeEntries(st *state, refs []Ref, prev []Package) (removed []Package, absent []Ref, changed bool) {
	for _, ref := range refs {
		n := len(removed)
		for k, p := range st.pkgs {
			if ref.matches(p) {
				removed = append(removed, p)
				st.del(k)
				changed = true
			}
		}
		if len(removed) > n {
			continue
		}
		if st.inDoubt {
			for _, p := range prev {
				if ref.matches(p) {
					removed = append(removed, p)
				}
			}
		}
		if len(removed) == n {
			absent = append(absent, ref)
		}
	}
	return removed, absent, changed
}

// ErrSeveralComponents: rollback was asked for an app published to more
// than one component of a dist.
var ErrSeveralComponents = errors.New("repo: app in several components")

// RollbackResult is what Rollback did.
type RollbackResult struct {
	Removed []Package // the entries taken out
	// Versions are the versions removed, newest first.
	Versions []string
	// Target is the newest version left: what the fleet steps down to
	// (unless it is marked broken there).
	Target string
}

// Rollback takes the newest version of name out of dist, or with to set every
// version newer than to (which must be in the dist), in one signed index
// change. It refuses with ErrWouldEmpty, changing nothing, when no version
// of name would be left.
func (r *Repo) Rollback(ctx context.Context, dist, name, to string) (RollbackResult, error) {
	if to != "" {
		if _, err := debian.ParseVersion(to); err != nil {
			return RollbackResult{}, fmt.Errorf("--to %q: %w", to, err)
		}
	}
	if err := r.checkSigner(ctx, dist, false); err != nil {
		return RollbackResult{}, err
	}
	var res RollbackResult
	err := r.update(ctx, dist, false, func(st *state) (bool, error) {
		if st.inDoubt && len(res.Removed) > 0 && !slices.ContainsFunc(res.Removed, func(p Package) bool { _, ok := st.pkgs[p.key()]; return ok }) {
			return false, nil // the last attempt's commit is in: roll back no further
		}
		res = RollbackResult{}
		var versions, comps []string
		for _, p := range st.pkgs {
			if p.Name == name && !slices.Contains(comps, p.Component) {
				comps = append(comps, p.Component)
			}
			if p.Name == name && !slices.ContainsFunc(versions, func(v string) bool { return debian.CompareVersions(v, p.Version) == 0 }) {
				versions = append(versions, p.Version)
			}
		}
		if len(comps) > 1 {
			// Hosts read one component each: a newest version across
			// components is no host's target.
			slices.Sort(comps)
			return false, fmt.Errorf("%w: %s is in components %s of %s; rollback reads one component (take versions out with yank NAME=VERSION)",
				ErrSeveralComponents, name, strings.Join(comps, ", "), dist)
		}
		if len(versions) == 0 {
			return false, fmt.Errorf("%s is not in %s", name, dist)
		}
		slices.SortFunc(versions, func(a, b string) int { return debian.CompareVersions(b, a) })
		drop := versions[:1]
		if to != "" {
			i := slices.IndexFunc(versions, func(v string) bool { return debian.CompareVersions(v, to) == 0 })
			if i < 0 {
				return false, fmt.Errorf("%s=%s is not in %s (it has %s)", name, to, dist, joinVersions(versions))
			}
			drop = versions[:i]
		}
		if len(drop) == len(versions) {
			return false, fmt.Errorf("rollback of %s in %s: %w of it (it has only %s)", name, dist, ErrWouldEmpty, joinVersions(versions))
		}
		if len(drop) == 0 {
			return false, fmt.Errorf("%s=%s is already the newest version of %s in %s: nothing to roll back", name, to, name, dist)
		}
		for k, p := range st.pkgs {
			if p.Name == name && slices.ContainsFunc(drop, func(v string) bool { return debian.CompareVersions(v, p.Version) == 0 }) {
				res.Removed = append(res.Removed, p)
				st.del(k)
			}
		}
		res.Versions = slices.Clone(drop)
		res.Target = versions[len(drop)]
		return true, nil
	})
	if err != nil {
		return RollbackResult{}, err
	}
	SortPackages(res.Removed)
	return res, nil
}

// Newest returns the newest version of name in dist, "" when it has none.
func (r *Repo) Newest(ctx context.Context, dist, name string) (string, error) {
	pkgs, err := r.List(ctx, dist)
	if err != nil {
		return "", err
	}
	newest := ""
	for _, p := range pkgs {
		if p.Name == name && (newest == "" || debian.CompareVersions(p.Version, newest) > 0) {
			newest = p.Version
		}
	}
	return newest, nil
}

func joinVersions(vs []string) string {
	out := ""
	for i, v := range vs {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
