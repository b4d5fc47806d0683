package storeurl_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/storeurl"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want storeurl.Location
	}{
		{"bucket and prefix", "s3://my-bucket/apt/myapp", storeurl.Location{Kind: "s3", Bucket: "my-bucket", Prefix: "apt/myapp"}},
		{"trailing slash", "s3://my-bucket/apt/", storeurl.Location{Kind: "s3", Bucket: "my-bucket", Prefix: "apt"}},
		{"bucket root", "s3://my.bucket.example", storeurl.Location{Kind: "s3", Bucket: "my.bucket.example"}},
		{"bucket root slash", "s3://abc/", storeurl.Location{Kind: "s3", Bucket: "abc"}},
		{"relative directory", "./repo", storeurl.Location{Kind: "dir", Dir: "./repo"}},
		{"bare name", "repo", storeurl.Location{Kind: "dir", Dir: "repo"}},
		{"absolute directory", "/srv/apt", storeurl.Location{Kind: "dir", Dir: "/srv/apt"}},
		{"file URL", "file:///srv/apt/", storeurl.Location{Kind: "dir", Dir: "/srv/apt"}},
		{"file URL localhost", "file://localhost/srv/apt", storeurl.Location{Kind: "dir", Dir: "/srv/apt"}},
		{"https", "https://apt.example.com/fleet/", storeurl.Location{Kind: "web", URL: "https://apt.example.com/fleet"}},
		{"http with a port", "http://127.0.0.1:8080/repo", storeurl.Location{Kind: "web", URL: "http://127.0.0.1:8080/repo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := storeurl.Parse(tt.raw)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"empty", "", "empty"},
		{"blank", "  ", "empty"},
		{"no bucket", "s3:///apt", "no bucket name"},
		{"uppercase bucket", "s3://My_Bucket/apt", `invalid bucket name "My_Bucket"`},
		{"short bucket", "s3://ab/apt", `invalid bucket name "ab"`},
		{"port", "s3://bucket:9000/apt", "invalid bucket name"},
		{"double dot bucket", "s3://a..b/apt", "invalid bucket name"},
		{"dotdot prefix", "s3://bucket/apt/../x", "invalid prefix"},
		{"empty segment", "s3://bucket/apt//x", "invalid prefix"},
		{"query", "s3://bucket/apt?region=eu-west-1", "query"},
		{"user", "s3://key:secret@bucket/apt", "user"},
		{"missing slashes", "s3:bucket/apt", "want s3://"},
		{"ftp", "ftp://mirror.example/apt", `unsupported scheme "ftp"`},
		{"web without a host", "https:///apt", "no host"},
		{"gs", "gs://bucket/apt", `unsupported scheme "gs"`},
		{"file host", "file://server/srv/apt", `not host "server"`},
		{"file root", "file:///", "absolute directory"},
		{"bad escape", "s3://bucket/a%zz", "invalid URL escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := storeurl.Parse(tt.raw)
			if !errors.Is(err, storeurl.ErrURL) {
				t.Fatalf("Parse(%q) = %v, want ErrURL", tt.raw, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, `"`+tt.raw+`"`) || strings.Contains(msg, "\n") {
				t.Errorf("Parse(%q) error %q: want one line naming the URL and %q", tt.raw, msg, tt.want)
			}
			if _, err := storeurl.Open(t.Context(), tt.raw, storeurl.Options{}); !errors.Is(err, storeurl.ErrURL) {
				t.Errorf("Open(%q) = %v, want ErrURL", tt.raw, err)
			}
		})
	}
}

// roundTrip writes through one store and reads through another.
func roundTrip(t *testing.T, w, r repo.Store) {
	t.Helper()
	const key, data = "dists/staging/Release", "Suite: staging\n"
	if _, err := w.Put(t.Context(), key, strings.NewReader(data), int64(len(data)), repo.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := r.Get(t.Context(), key, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if string(got) != data {
		t.Fatalf("read %q, want %q", got, data)
	}
}

func TestOpenS3(t *testing.T) {
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{})
	opts := storeurl.Options{
		Endpoint:    srv.URL,
		Region:      srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	}
	w, err := storeurl.Open(t.Context(), "s3://"+srv.Bucket+"/apt/myapp", opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := storeurl.Open(t.Context(), "s3://"+srv.Bucket+"/apt/myapp/", opts)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, w, r)
	if _, err := os.Stat(filepath.Join(srv.Root, srv.Bucket, "apt/myapp/dists/staging/Release")); err != nil {
		t.Errorf("object not under the URL's prefix in the bucket: %v", err)
	}
}

func TestOpenDirectory(t *testing.T) {
	d := filepath.Join(t.TempDir(), "repo")
	w, err := storeurl.Open(t.Context(), d, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := storeurl.Open(t.Context(), "file://"+d, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, w, r)
	if _, err := os.Stat(filepath.Join(d, "dists/staging/Release")); err != nil {
		t.Errorf("file not in the directory: %v", err)
	}
}
