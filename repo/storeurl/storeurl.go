// Package storeurl opens the repo.Store a repository URL names:
//
//	s3://BUCKET/PREFIX      an S3 bucket (or an S3-compatible server), package repo/s3
//	/srv/repo, ./repo       a local directory, package repo/dir
//	file:///srv/repo        the same, as a URL
//	https://HOST/PATH       a repository served by a web server, read-only, package repo/web
//	                        (http:// too, for tests and private networks)
package storeurl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
	"github.com/aptfleet/aptfleet/repo/s3"
	"github.com/aptfleet/aptfleet/repo/web"
)

// ErrURL reports a repository URL that cannot be used.
var ErrURL = errors.New("bad repository URL")

// Options apply to s3:// URLs (HTTPClient to http(s):// too); local
// directories ignore them.
type Options struct {
	// Endpoint is the base URL of an S3-compatible server. Default "": the
	// AWS SDK's (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, shared config), else AWS.
	Endpoint string
	// Region of the bucket. Default "": the SDK's (AWS_REGION...), else us-east-1.
	Region string
	// PathStyle forces path-style bucket addressing. Default false (implied
	// for endpoints on an IP address or localhost).
	PathStyle bool
	// Credentials overrides the SDK's default credential chain. Default nil.
	Credentials aws.CredentialsProvider
	// HTTPClient sends the S3 requests. Default nil: the SDK's.
	HTTPClient *http.Client
	// Timeout fails an S3 request that makes no progress for this long
	// (s3.Config.Timeout). Default 0: s3's default, 30s.
	Timeout time.Duration
}

// Location is a parsed repository URL.
type Location struct {
	// Kind is "s3", "dir" or "web".
	Kind string
	// Bucket and Prefix locate an S3 repository (Prefix without slashes at
	// either end, "" for the bucket root).
	Bucket, Prefix string
	// Dir is a local repository's directory, as given.
	Dir string
	// URL is a web repository's base URL.
	URL string
}

// String returns the canonical form: s3://bucket/prefix or the directory.
func (l Location) String() string {
	if l.Kind == "s3" {
		return "s3://" + l.Bucket + "/" + l.Prefix
	}
	if l.Kind == "web" {
		return l.URL
	}
	return l.Dir
}

// bucketName is S3's rule for new buckets: 3 to 63 lowercase letters,
// digits, dots and hyphens, starting and ending with a letter or digit.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Parse checks raw and says what it names, without touching the store.
func Parse(raw string) (Location, error) {
	bad := func(format string, a ...any) (Location, error) {
		return Location{}, fmt.Errorf("%w %q: %s", ErrURL, raw, fmt.Sprintf(format, a...))
	}
	if strings.TrimSpace(raw) == "" {
		return bad("empty")
	}
	scheme, _, isURL := strings.Cut(raw, "://")
	if !isURL {
		lower := strings.ToLower(raw)
		for _, s := range []string{"s3:", "file:", "http:", "https:"} {
			if strings.HasPrefix(lower, s) {
				return bad("want %s//...", s)
			}
		}
		return Location{Kind: "dir", Dir: raw}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("%v", errors.Unwrap(err))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return bad("user, query and fragment are not allowed")
	}
	switch strings.ToLower(scheme) {
	case "s3":
		if u.Host == "" {
			return bad("no bucket name (want s3://BUCKET/PREFIX)")
		}
		if u.Port() != "" || !bucketName.MatchString(u.Host) || strings.Contains(u.Host, "..") {
			return bad("invalid bucket name %q (3-63 lowercase letters, digits, dots and hyphens)", u.Host)
		}
		prefix := strings.Trim(u.Path, "/")
		if prefix != "" {
			for _, seg := range strings.Split(prefix, "/") {
				if seg == "" || seg == "." || seg == ".." {
					return bad("invalid prefix %q (empty, . or .. path segment)", prefix)
				}
			}
		}
		return Location{Kind: "s3", Bucket: u.Host, Prefix: prefix}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return bad("file URLs name a local directory: want file:///PATH, not host %q", u.Host)
		}
		if !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
			return bad("want an absolute directory path below /")
		}
		return Location{Kind: "dir", Dir: path.Clean(u.Path)}, nil
	case "http", "https":
		if u.Host == "" {
			return bad("no host (want %s://HOST/PATH)", strings.ToLower(scheme))
		}
		return Location{Kind: "web", URL: strings.ToLower(scheme) + "://" + u.Host + "/" + strings.Trim(u.Path, "/")}, nil
	default:
		return bad("unsupported scheme %q (want s3://BUCKET/PREFIX, https://HOST/PATH, file:///PATH or a directory)", scheme)
	}
}

// Open parses raw and returns its store. An S3 store is opened without a
// request; a local directory is created if it does not exist.
func Open(ctx context.Context, raw string, opts Options) (repo.Store, error) {
	loc, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	switch loc.Kind {
	case "dir":
		return dir.Open(loc.Dir)
	case "web":
		return web.New(loc.URL, opts.HTTPClient)
	}
	cfg := s3.DefaultConfig()
	cfg.Bucket, cfg.Prefix = loc.Bucket, loc.Prefix
	cfg.Endpoint, cfg.Region, cfg.PathStyle = opts.Endpoint, opts.Region, opts.PathStyle
	cfg.Credentials, cfg.HTTPClient = opts.Credentials, opts.HTTPClient
	if opts.Timeout != 0 {
		cfg.Timeout = opts.Timeout
	}
	return s3.New(ctx, cfg)
}
