package puller

import (
	"context"

	"github.com/aptfleet/aptfleet/repo"
)

// RepoIndex reads an app's dist through repo.Reader: Check is one conditional
// GET of InRelease; Versions verifies InRelease's signature and the Packages
// checksum before listing.
type RepoIndex struct {
	Reader *repo.Reader
}

var _ Index = RepoIndex{}

// Check implements Index.
func (r RepoIndex) Check(ctx context.Context, dist, etag string) (bool, string, error) {
	return r.Reader.Check(ctx, dist, etag)
}

// Versions implements Index.
func (r RepoIndex) Versions(ctx context.Context, dist, pkg string) ([]string, error) {
	pkgs, err := r.Reader.Index(ctx, dist)
	if err != nil {
		return nil, err
	}
	return repo.Versions(pkgs, pkg), nil
}
