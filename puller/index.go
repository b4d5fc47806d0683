package puller

import (
	"context"
	"fmt"
	"time"

	"github.com/aptfleet/aptfleet/repo"
)

// StaleIndexError is an InRelease older than the newest one this host
// accepted for the app and dist: an old signed index replayed (a restored
// copy, a stale mirror). The host keeps its version.
type StaleIndexError struct {
	App, Dist string
	Date      time.Time // of the InRelease refused
	Newest    time.Time // the newest Date accepted
}

func (e *StaleIndexError) Error() string {
	return fmt.Sprintf("puller: %s: stale index refused: dists/%s/InRelease has Date %s, older than %s already accepted",
		e.App, e.Dist, e.Date.UTC().Format(time.RFC3339), e.Newest.UTC().Format(time.RFC3339))
}

// IndexDates remembers, per "app/dist", the newest InRelease Date the host
// accepted (statedir.Dates keeps it in state_dir).
type IndexDates interface {
	// Advance records date for key unless an older one is given; it returns
	// the newest Date recorded for key (date itself when it was recorded).
	Advance(key string, date time.Time) (newest time.Time, err error)
	// Newest returns the newest Date recorded for key (zero when none),
	// writing nothing.
	Newest(key string) (time.Time, error)
}

// IndexPeeker is an Index that can list versions the way Versions does
// while recording nothing (no index Date): what `puller plan` reads.
type IndexPeeker interface {
	PeekVersions(ctx context.Context, dist, pkg string) (Listing, error)
}

// RepoIndex reads an app's dist through repo.Reader: Check is one conditional
// GET of InRelease; Versions verifies InRelease's signature, its Suite and
// Codename, its Valid-Until and the Packages checksum before listing. With
// Dates set it also refuses an InRelease older than the newest this host
// accepted for App and the dist (a *StaleIndexError), and records a newer one.
type RepoIndex struct {
	Reader *repo.Reader
	App    string
	Dates  IndexDates // nil: no memory of Dates
}

var (
	_ Index       = RepoIndex{}
	_ IndexPeeker = RepoIndex{}
)

// Check implements Index.
func (r RepoIndex) Check(ctx context.Context, dist, etag string) (bool, string, error) {
	return r.Reader.Check(ctx, dist, etag)
}

// Versions implements Index.
func (r RepoIndex) Versions(ctx context.Context, dist, pkg string) (Listing, error) {
	return r.versions(ctx, dist, pkg, true)
}

// PeekVersions implements IndexPeeker: Versions, refusing a stale index the
// same way, without recording a newer Date.
func (r RepoIndex) PeekVersions(ctx context.Context, dist, pkg string) (Listing, error) {
	return r.versions(ctx, dist, pkg, false)
}

func (r RepoIndex) versions(ctx context.Context, dist, pkg string, record bool) (Listing, error) {
	d, err := r.Reader.Dist(ctx, dist)
	if err != nil {
		return Listing{}, err
	}
	if r.Dates != nil {
		date := d.Release.Date
		var newest time.Time
		if record {
			newest, err = r.Dates.Advance(r.App+"/"+dist, date)
		} else {
			newest, err = r.Dates.Newest(r.App + "/" + dist)
		}
		if err != nil {
			return Listing{}, err
		}
		if date.Before(newest) {
			return Listing{}, &StaleIndexError{App: r.App, Dist: dist, Date: date, Newest: newest}
		}
	}
	return Listing{Versions: repo.Versions(d.Packages, pkg), ValidUntil: d.Release.ValidUntil}, nil
}
