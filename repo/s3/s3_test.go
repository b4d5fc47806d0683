package s3_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/s3"
	"github.com/aptfleet/aptfleet/repo/storetest"
)

// newStore returns a store on srv under a prefix no other test uses.
func newStore(t *testing.T, srv *s3server.Server, prefix string) *s3.Store {
	t.Helper()
	st, err := s3.New(t.Context(), s3.Config{
		Bucket:      srv.Bucket,
		Prefix:      prefix,
		Region:      srv.Region,
		Endpoint:    srv.URL,
		PathStyle:   srv.PathStyle,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		HTTPClient:  srv.HTTPClient,
	})
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return st
}

// conformance runs the shared suite with one fresh prefix per subtest.
func conformance(t *testing.T, srv *s3server.Server) {
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) repo.Store {
		return newStore(t, srv, fmt.Sprintf("conformance/%d/apt", n.Add(1)))
	})
}

func TestConformanceGoFakeS3(t *testing.T) {
	conformance(t, s3server.GoFakeS3(t, "aptfleet", nil))
}

func TestConformanceVersitygw(t *testing.T) {
	conformance(t, s3server.Versitygw(t, s3server.VersitygwOptions{}))
}

// TLS with a test CA and virtual-host bucket names, the way Debian's
// apt-transport-s3 reaches a bucket.
func TestConformanceVersitygwTLSVirtualHost(t *testing.T) {
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{TLS: true, VirtualHost: true, AnonymousRead: true})
	conformance(t, srv)

	t.Run("AnonymousRead", func(t *testing.T) {
		st := newStore(t, srv, "anon")
		data := "Package: hello\n"
		if _, err := st.Put(t.Context(), "dists/staging/Release", strings.NewReader(data), int64(len(data)), repo.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		url := srv.ObjectURL("anon/dists/staging/Release")
		if !strings.HasPrefix(url, "https://"+srv.Bucket+".s3.test:") {
			t.Fatalf("object URL %s is not virtual-host style", url)
		}
		resp, err := srv.HTTPClient.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != data {
			t.Fatalf("anonymous GET %s: %s %q, want 200 %q", url, resp.Status, body, data)
		}
	})
}

func TestPrefixesAreIsolated(t *testing.T) {
	srv := s3server.GoFakeS3(t, "aptfleet", nil)
	a := newStore(t, srv, "/repo/")
	ab := newStore(t, srv, "repo-b")
	root := newStore(t, srv, "")
	for _, st := range []*s3.Store{a, ab} {
		if _, err := st.Put(t.Context(), "dists/x/Release", strings.NewReader(st.String()), int64(len(st.String())), repo.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := a.List(t.Context(), "", func(o repo.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "dists/x/Release" {
		t.Errorf("List in prefix repo = %q, want only its own key", keys)
	}
	keys = nil
	if err := root.List(t.Context(), "", func(o repo.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "repo-b/dists/x/Release,repo/dists/x/Release" {
		t.Errorf("List at the bucket root = %q", keys)
	}
	if got := a.String(); got != "s3://aptfleet/repo" {
		t.Errorf("String() = %q", got)
	}
}

func TestErrors(t *testing.T) {
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{})
	tests := []struct {
		name    string
		cfg     func(c *s3.Config)
		want    []string // substrings of the one-line message
		head404 bool     // HEAD gets a bodiless 404 here, indistinguishable from a missing key
	}{
		{
			name: "wrong secret",
			cfg: func(c *s3.Config) {
				c.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, "not-the-secret", "")
			},
			want: []string{"s3://" + srv.Bucket + "/p/dists/staging/InRelease", "HTTP 403", "SignatureDoesNotMatch", "check the secret access key"},
		},
		{
			name: "unknown access key",
			cfg: func(c *s3.Config) {
				c.Credentials = credentials.NewStaticCredentialsProvider("AKIANOSUCHKEY0000000", srv.SecretKey, "")
			},
			want:    []string{"check the access key id"},
			head404: true, // versitygw answers 404 XAdminUserNotFound
		},
		{
			name:    "missing bucket",
			cfg:     func(c *s3.Config) { c.Bucket = "no-such-bucket" },
			want:    []string{"s3://no-such-bucket/p/dists/staging/InRelease", "NoSuchBucket", "the bucket does not exist"},
			head404: true,
		},
		{
			name: "server down",
			cfg:  func(c *s3.Config) { c.Endpoint, c.MaxAttempts = "http://127.0.0.1:1", 1 },
			want: []string{"s3://" + srv.Bucket + "/p/dists/staging/InRelease", "connection refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s3.Config{
				Bucket:      srv.Bucket,
				Prefix:      "p",
				Region:      srv.Region,
				Endpoint:    srv.URL,
				PathStyle:   true,
				Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
			}
			tt.cfg(&cfg)
			st, err := s3.New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ops := map[string]error{}
			_, _, ops["get"] = st.Get(t.Context(), "dists/staging/InRelease", "")
			_, ops["head"] = st.Head(t.Context(), "dists/staging/InRelease")
			_, ops["put"] = st.Put(t.Context(), "dists/staging/InRelease", strings.NewReader("x"), 1, repo.PutOptions{IfMatch: `"abc"`})
			for op, err := range ops {
				if err == nil {
					t.Fatalf("%s succeeded", op)
				}
				if op == "head" && tt.head404 {
					continue
				}
				for _, s := range []error{repo.ErrNotFound, repo.ErrPrecondition, repo.ErrNotModified} {
					if errors.Is(err, s) {
						t.Errorf("%s: %v must not count as %v", op, err, s)
					}
				}
				msg := err.Error()
				if strings.Contains(msg, "\n") || len(msg) > 300 {
					t.Errorf("%s: want one short line, got: %q", op, msg)
				}
				if !strings.HasPrefix(msg, op+" ") {
					t.Errorf("%s: error %q does not start with the operation", op, msg)
				}
				if op == "head" {
					continue // HEAD responses have no body: only the status is known
				}
				for _, w := range tt.want {
					if !strings.Contains(msg, w) {
						t.Errorf("%s: error %q does not mention %q", op, msg, w)
					}
				}
			}
		})
	}
}

func TestNoBucketName(t *testing.T) {
	_, err := s3.New(t.Context(), s3.Config{})
	if !errors.Is(err, s3.ErrConfig) {
		t.Fatalf("New without a bucket: %v, want ErrConfig", err)
	}
}

// The endpoint, region and credentials come from the environment the way
// the AWS CLI reads them, with real SigV4 checking on versitygw.
func TestEndpointAndCredentialsFromEnvironment(t *testing.T) {
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{})
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_S3":         srv.URL,
		"AWS_ACCESS_KEY_ID":           srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY":       srv.SecretKey,
		"AWS_REGION":                  srv.Region,
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_PROFILE":                 "",
		"AWS_ENDPOINT_URL":            "",
		"AWS_SESSION_TOKEN":           "",
	} {
		t.Setenv(k, v)
	}
	// No PathStyle: an endpoint on an IP address implies it.
	st, err := s3.New(t.Context(), s3.Config{Bucket: srv.Bucket, Prefix: "env"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(t.Context(), "k", strings.NewReader("v"), 1, repo.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatalf("put through the environment's endpoint and credentials: %v", err)
	}
	if _, err := st.Head(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
}

// A bucket in another region: AWS answers 301 PermanentRedirect and names
// the bucket's region in a header. AWS cannot be reached from the tests, so
// this handler replays that answer.
func TestWrongRegionNamesTheBucketRegion(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amz-Bucket-Region", "eu-west-1")
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusMovedPermanently)
		if r.Method != http.MethodHead {
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
				`<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message>`+
				`<Endpoint>fleet.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>fleet</Bucket><RequestId>R</RequestId><HostId>H</HostId></Error>`)
		}
	}))
	defer srv.Close()
	st, err := s3.New(t.Context(), s3.Config{
		Bucket: "fleet", Prefix: "apt", Region: "us-east-1", Endpoint: srv.URL,
		Credentials: credentials.NewStaticCredentialsProvider("AKIA", "secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _, errGet := st.Get(t.Context(), "dists/production/InRelease", "")
	_, errHead := st.Head(t.Context(), "dists/production/InRelease")
	_, errPut := st.Put(t.Context(), "dists/production/InRelease", strings.NewReader("x"), 1, repo.PutOptions{})
	for op, err := range map[string]error{"get": errGet, "head": errHead, "put": errPut} {
		if err == nil || !strings.Contains(err.Error(), "the bucket is in region eu-west-1") {
			t.Errorf("%s: %v, want the bucket's region named", op, err)
		}
		if errors.Is(err, repo.ErrNotFound) || errors.Is(err, repo.ErrPrecondition) {
			t.Errorf("%s: %v maps to a repo sentinel", op, err)
		}
	}
	if errGet != nil && !strings.Contains(errGet.Error(), "HTTP 301 PermanentRedirect") {
		t.Errorf("get: %v", errGet)
	}
}
