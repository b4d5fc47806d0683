// Package s3 stores an apt repository under a prefix of an S3 bucket, or of a
// bucket on any S3-compatible server (versitygw, MinIO, Ceph RGW).
//
// Conditional writes use S3's own preconditions (PutObject with
// If-None-Match: * or If-Match: ETag), so concurrent publishers need no lock.
// The store never lists or creates buckets; List is the only listing call.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/aptfleet/aptfleet/repo"
)

// Config says where the repository lives and how to reach it.
type Config struct {
	// Bucket is the bucket name. Required.
	Bucket string
	// Prefix is the repository root inside the bucket ("apt/myapp"); leading
	// and trailing slashes are ignored. Default: the bucket root.
	Prefix string
	// Region is the bucket's region. Default: the SDK's (AWS_REGION, the
	// shared config file), else us-east-1.
	Region string
	// Endpoint is the base URL of an S3-compatible server
	// ("http://127.0.0.1:7070"). Default: the SDK's (AWS_ENDPOINT_URL_S3,
	// AWS_ENDPOINT_URL, the shared config file), else AWS.
	Endpoint string
	// PathStyle addresses buckets as ENDPOINT/BUCKET/KEY instead of
	// BUCKET.ENDPOINT/KEY. Default false, except with an endpoint whose host
	// is an IP address or localhost, where virtual hosts cannot work.
	PathStyle bool
	// Credentials overrides the SDK's default credential chain (environment,
	// shared files, SSO, container and instance roles). Default nil: the chain.
	Credentials aws.CredentialsProvider
	// HTTPClient sends the requests. Default nil: the SDK's client.
	HTTPClient *http.Client
	// MaxAttempts bounds the tries of one request (throttling, 5xx and
	// connection errors are retried with backoff). Default 0: the SDK's (3).
	MaxAttempts int
	// SpoolDir holds temporary copies of unseekable bodies larger than
	// MemoryLimit while they are uploaded. Default "": os.TempDir().
	SpoolDir string
	// MemoryLimit is the largest unseekable body buffered in memory rather
	// than spooled to a file. Default 8 MiB.
	MemoryLimit int64
	// Timeout fails a request that makes no progress (no byte sent or
	// received) for this long, with a StallError naming the endpoint; a
	// stalled request is not retried. Conditional writes wait for the
	// server's "100 Continue" before sending their body, for as long, so a
	// server that hangs before reading one never applies it later.
	// Default 30s; negative: no timeout.
	Timeout time.Duration
}

// DefaultConfig returns a Config with the defaults filled in; Bucket is left
// for the caller.
func DefaultConfig() Config {
	return Config{MemoryLimit: 8 << 20, Timeout: 30 * time.Second}
}

// Store is a repo.Store on S3.
type Store struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
	cfg    Config
}

var _ repo.Store = (*Store)(nil)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("s3: bad configuration")

// New loads the SDK's default configuration (credential chain, region,
// endpoint from the environment and shared files), applies cfg over it and
// returns the store. It makes no request.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("%w: no bucket name", ErrConfig)
	}
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultConfig().MemoryLimit
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultConfig().Timeout
	}
	var loads []func(*config.LoadOptions) error
	if cfg.Region != "" {
		loads = append(loads, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		loads = append(loads, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle || bareHost(aws.ToString(o.BaseEndpoint))
		if cfg.MaxAttempts > 0 {
			o.RetryMaxAttempts = cfg.MaxAttempts
		}
		if cfg.HTTPClient != nil {
			// Set here rather than in LoadDefaultConfig, which refuses a
			// plain *http.Client when AWS_CA_BUNDLE is set: the caller's
			// client carries its own trust roots.
			o.HTTPClient = cfg.HTTPClient
		}
		if cfg.Timeout > 0 {
			o.HTTPClient = newStallClient(o.HTTPClient, cfg.Timeout, aws.ToString(o.BaseEndpoint))
			if o.Retryer == nil {
				o.Retryer = retry.NewStandard()
			}
			if r, ok := o.Retryer.(aws.RetryerV2); ok {
				o.Retryer = noRetryOnStall{r}
			}
		}
		// Checksums only where S3 demands them: the repository carries its
		// own SHA256 sums, and trailing checksums (aws-chunked) are not
		// understood by every S3-compatible server.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return NewFromClient(client, cfg), nil
}

// bareHost reports whether endpoint's host is an IP address or localhost.
func bareHost(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	h := u.Hostname()
	return h == "localhost" || net.ParseIP(h) != nil
}

// NewFromClient returns a store that sends its requests through client; of
// cfg only Bucket, Prefix, SpoolDir and MemoryLimit are used.
func NewFromClient(client *s3.Client, cfg Config) *Store {
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultConfig().MemoryLimit
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{client: client, bucket: cfg.Bucket, prefix: prefix, cfg: cfg}
}

// String returns the store's location as an s3:// URL.
func (s *Store) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

func (s *Store) url(key string) string { return "s3://" + s.bucket + "/" + s.prefix + key }

// Get implements repo.Store.
func (s *Store) Get(ctx context.Context, key, ifNoneMatch string) (io.ReadCloser, repo.Object, error) {
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)}
	if ifNoneMatch != "" {
		in.IfNoneMatch = aws.String(ifNoneMatch)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, repo.Object{}, s.fail(ctx, "get", key, err)
	}
	return out.Body, repo.Object{
		Key:      key,
		Size:     aws.ToInt64(out.ContentLength),
		ETag:     aws.ToString(out.ETag),
		Modified: aws.ToTime(out.LastModified),
	}, nil
}

// Head implements repo.Store.
func (s *Store) Head(ctx context.Context, key string) (repo.Object, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		return repo.Object{}, s.fail(ctx, "head", key, err)
	}
	return repo.Object{
		Key:      key,
		Size:     aws.ToInt64(out.ContentLength),
		ETag:     aws.ToString(out.ETag),
		Modified: aws.ToTime(out.LastModified),
	}, nil
}

// Put implements repo.Store. S3 does not return the modification time of a
// write, so the returned Object's Modified is zero.
func (s *Store) Put(ctx context.Context, key string, body io.Reader, size int64, opts repo.PutOptions) (repo.Object, error) {
	rs, cleanup, err := s.seekable(body, size)
	if err != nil {
		return repo.Object{}, fmt.Errorf("put %s: read body: %w", s.url(key), err)
	}
	defer cleanup()
	in := &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           aws.String(s.prefix + key),
		Body:          rs,
		ContentLength: aws.Int64(size),
	}
	if opts.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(opts.IfMatch)
	}
	if opts.ContentType != "" {
		in.ContentType = aws.String(opts.ContentType)
	}
	var optFns []func(*s3.Options)
	if opts.IfNoneMatch || opts.IfMatch != "" {
		// Send the body only once the server has answered "100 Continue":
		// a server that stops before that never gets a whole request, so
		// it cannot apply it after this client gave up.
		optFns = append(optFns, func(o *s3.Options) { o.ContinueHeaderThresholdBytes = 1 })
	}
	sent := new(atomic.Bool)
	out, err := s.client.PutObject(context.WithValue(ctx, sentKey{}, sent), in, optFns...)
	if err != nil {
		e := s.fail(ctx, "put", key, err)
		if e.Sentinel == nil && sent.Load() && (e.Status == 0 || e.Status >= 500) {
			// The whole request reached the server; its answer was lost
			// or was an error that may have come after the write.
			e.Sentinel = repo.ErrUnknownOutcome
		}
		return repo.Object{}, e
	}
	return repo.Object{Key: key, Size: size, ETag: aws.ToString(out.ETag)}, nil
}

// seekable returns body as an io.ReadSeeker of exactly size bytes, so the SDK
// can hash it for SigV4 and rewind it for retries: seekable bodies are used
// as they are, others are buffered in memory or spooled to a temporary file.
func (s *Store) seekable(body io.Reader, size int64) (io.ReadSeeker, func(), error) {
	if rs, ok := body.(io.ReadSeeker); ok {
		return rs, func() {}, nil
	}
	if size <= s.cfg.MemoryLimit {
		b := make([]byte, size)
		if _, err := io.ReadFull(body, b); err != nil {
			return nil, nil, err
		}
		return bytes.NewReader(b), func() {}, nil
	}
	f, err := os.CreateTemp(s.cfg.SpoolDir, "aptfleet-s3-*")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, io.LimitReader(body, size))
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return f, cleanup, nil
}

// Delete implements repo.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		err = s.fail(ctx, "delete", key, err)
		if errors.Is(err, repo.ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}

// List implements repo.Store. S3 lists keys in UTF-8 byte order, which is
// Go's string order.
func (s *Store) List(ctx context.Context, prefix string, fn func(repo.Object) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.bucket,
		Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.fail(ctx, "list", prefix, err)
		}
		for _, o := range page.Contents {
			err := fn(repo.Object{
				Key:      strings.TrimPrefix(aws.ToString(o.Key), s.prefix),
				Size:     aws.ToInt64(o.Size),
				ETag:     aws.ToString(o.ETag),
				Modified: aws.ToTime(o.LastModified),
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Error is a failed S3 request, with what the server said.
type Error struct {
	Op     string // get, head, put, delete, list
	URL    string // s3://bucket/key
	Status int    // HTTP status; 0 when no response arrived
	Code   string // S3 error code ("SignatureDoesNotMatch"); may be empty
	Msg    string // the server's message or the transport error
	// Sentinel is the repo error this maps to (repo.ErrNotFound,
	// repo.ErrPrecondition, repo.ErrNotModified), or nil.
	Sentinel error
	// Region is the bucket's region when the server says it is not the one
	// the request was sent to.
	Region string
	Err    error // the SDK's error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", e.Op, e.URL)
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d ", e.Status)
	}
	if e.Code != "" {
		b.WriteString(e.Code)
		if e.Msg != "" {
			b.WriteString(": ")
		}
	}
	b.WriteString(strings.Join(strings.Fields(e.Msg), " "))
	switch hint := hints[e.Code]; {
	case e.Region != "" && (e.Status == http.StatusMovedPermanently || e.Status == http.StatusBadRequest):
		b.WriteString(" (the bucket is in region " + e.Region + ": set the region to it)")
	case hint != "":
		b.WriteString(" (" + hint + ")")
	}
	return strings.TrimSpace(b.String())
}

// Unwrap returns the sentinel (for errors.Is) and the SDK's error.
func (e *Error) Unwrap() []error {
	if e.Sentinel != nil {
		return []error{e.Sentinel, e.Err}
	}
	return []error{e.Err}
}

var hints = map[string]string{
	"SignatureDoesNotMatch": "check the secret access key",
	"InvalidAccessKeyId":    "check the access key id",
	"XAdminUserNotFound":    "check the access key id",
	"NoSuchBucket":          "the bucket does not exist",
	"AccessDenied":          "the credentials may not access this bucket or key",
	"PermanentRedirect":     "the bucket is in another region: set the region",
}

// sentinelCodes are the S3 error codes that may map to a repo sentinel; a
// response with any other code is reported as it is. HEAD responses and 304s
// carry no body, so their code is empty or synthesized from the status.
var sentinelCodes = map[string]bool{
	"NoSuchKey":                  true,
	"NotFound":                   true,
	"NotModified":                true,
	"PreconditionFailed":         true,
	"ConditionalRequestConflict": true,
}

// fail turns an SDK error into an *Error carrying the matching sentinel.
func (s *Store) fail(ctx context.Context, op, key string, err error) *Error {
	e := &Error{Op: op, URL: s.url(key), Err: err}
	var stall *StallError
	switch {
	case errors.As(err, &stall):
		e.Msg = stall.Error()
		return e
	case ctx.Err() != nil:
		// Interrupted or past a deadline: say why, not the SDK's layers.
		e.Msg = context.Cause(ctx).Error()
		return e
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
		if re.Response != nil {
			// AWS names the bucket's region when a request went to another.
			e.Region = re.Response.Header.Get("X-Amz-Bucket-Region")
		}
	}
	var ae smithy.APIError
	var ne *net.OpError
	switch {
	case errors.As(err, &ae):
		e.Code, e.Msg = ae.ErrorCode(), ae.ErrorMessage()
	case errors.As(err, &ne):
		// "dial tcp 127.0.0.1:9000: connect: connection refused", without
		// the SDK's layers of operation and retry context.
		e.Msg = ne.Error()
	default:
		e.Msg = err.Error()
	}
	switch {
	case e.Code != "" && !sentinelCodes[e.Code]:
		// NoSuchBucket, XAdminUserNotFound...: a 404 that is not about the key.
	case op == "put" && e.Status == http.StatusPreconditionFailed:
		e.Sentinel = repo.ErrPrecondition
	case op == "put" && e.Status == http.StatusNotFound:
		// If-Match on a key that does not exist: AWS and versitygw answer 404.
		e.Sentinel = repo.ErrPrecondition
	case op == "put" && e.Status == http.StatusConflict && e.Code == "ConditionalRequestConflict":
		// AWS: another conditional write to the key was in flight.
		e.Sentinel = repo.ErrPrecondition
	case e.Status == http.StatusNotModified:
		e.Sentinel = repo.ErrNotModified
	case e.Status == http.StatusNotFound:
		e.Sentinel = repo.ErrNotFound
	}
	if e.Msg == "" && e.Sentinel != nil {
		e.Msg = strings.TrimPrefix(e.Sentinel.Error(), "repo: ")
	}
	return e
}
