package web_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
	"github.com/aptfleet/aptfleet/repo/storeurl"
	"github.com/aptfleet/aptfleet/repo/web"
)

// counter is an http.RoundTripper that counts requests and remembers the
// status codes and conditional headers it saw.
type counter struct {
	mu       sync.Mutex
	requests int
	statuses []int
	headers  []string
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	if err == nil {
		c.statuses = append(c.statuses, resp.StatusCode)
	}
	h := ""
	if v := req.Header.Get("If-None-Match"); v != "" {
		h = "If-None-Match"
	} else if v := req.Header.Get("If-Modified-Since"); v != "" {
		h = "If-Modified-Since"
	}
	c.headers = append(c.headers, h)
	return resp, err
}

func (c *counter) since(n int) (requests int, statuses []int, headers []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests - n, append([]int(nil), c.statuses[n:]...), append([]string(nil), c.headers[n:]...)
}

// server serves a directory and returns its base URL.
type server func(t *testing.T, root string) string

// goFileServer is Go's http.FileServer: Last-Modified, no ETag.
func goFileServer(t *testing.T, root string) string {
	srv := httptest.NewServer(http.StripPrefix("/apt/", http.FileServer(http.Dir(root))))
	t.Cleanup(srv.Close)
	return srv.URL + "/apt"
}

// nginx is Debian's nginx serving root: ETag and Last-Modified.
func nginx(t *testing.T, root string) string {
	testenv.NeedTools(t, "nginx")
	testenv.NeedRoot(t)
	d := t.TempDir()
	port := testenv.FreePort(t)
	conf := fmt.Sprintf(`daemon off;
user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]d;
		location /apt/ { alias %[3]s/; }
	}
}
`, d, port, root)
	if err := os.WriteFile(filepath.Join(d, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nginx", "-c", filepath.Join(d, "nginx.conf"), "-p", d)
	out, _ := os.Create(filepath.Join(d, "out.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(d, "error.log"))
			t.Fatalf("nginx did not listen on %s: %s", addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr + "/apt"
}

// TestReadOverHTTP runs what the puller does against a repository served
// by nginx (ETag, If-None-Match) and by Go's file server (Last-Modified,
// If-Modified-Since): the idle tick is one conditional request answered
// 304; a publish is seen at the next tick; the signature and every index's
// checksum are checked as for S3.
func TestReadOverHTTP(t *testing.T) {
	for _, tc := range []struct {
		name   string
		serve  server
		header string
	}{
		{"nginx", nginx, "If-None-Match"},
		{"go file server", goFileServer, "If-Modified-Since"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			os.Chmod(root, 0o755)
			st, err := dir.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			key := repotest.NewKey(t, t.TempDir(), "")
			w := &repo.Repo{Store: st, Signer: key.Signer}
			debDir := t.TempDir()
			publish := func(v string) {
				t.Helper()
				if _, err := w.Publish(ctx, "production", "", []string{debs.Write(t, debDir, debs.Spec{Name: "hello", Version: v})}); err != nil {
					t.Fatal(err)
				}
			}
			publish("1.0-1")
			base := tc.serve(t, root)

			c := &counter{}
			s, err := storeurl.Open(ctx, base, storeurl.Options{HTTPClient: &http.Client{Transport: c}})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := s.(*web.Store); !ok {
				t.Fatalf("storeurl.Open(%s) = %T, want *web.Store", base, s)
			}
			r := &repo.Reader{Store: s, Keyring: key.Signer.Keyring()}
			versions := func(t *testing.T) string {
				t.Helper()
				pkgs, err := r.Index(ctx, "production")
				if err != nil {
					t.Fatal(err)
				}
				var vs []string
				for _, p := range pkgs {
					vs = append(vs, p.Version)
				}
				return strings.Join(vs, " ")
			}
			if got := versions(t); got != "1.0-1" {
				t.Fatalf("versions %q", got)
			}
			// No validator is trusted for a file written less than two
			// seconds before the response (nginx's ETag and every
			// Last-Modified have one-second resolution): let InRelease
			// age, as it does between publishes.
			time.Sleep(2100 * time.Millisecond)
			changed, etag, err := r.Check(ctx, "production", "")
			if err != nil || !changed || etag == "" {
				t.Fatalf("first check: changed %v, etag %q, %v", changed, etag, err)
			}

			t.Run("the idle tick is one conditional request", func(t *testing.T) {
				n, _, _ := c.since(0)
				for i := 0; i < 5; i++ {
					changed, got, err := r.Check(ctx, "production", etag)
					if err != nil || changed || got != etag {
						t.Fatalf("idle check %d: changed %v, etag %q, %v", i, changed, got, err)
					}
				}
				requests, statuses, headers := c.since(n)
				if requests != 5 {
					t.Errorf("%d requests for 5 idle ticks, want 5", requests)
				}
				for i := range statuses {
					if statuses[i] != http.StatusNotModified || headers[i] != tc.header {
						t.Errorf("idle request %d: %s, status %d; want %s and 304", i, headers[i], statuses[i], tc.header)
					}
				}
			})
			t.Run("a publish is seen at the next tick", func(t *testing.T) {
				publish("1.1-1")
				changed, got, err := r.Check(ctx, "production", etag)
				if err != nil || !changed || got == etag {
					t.Fatalf("check after a publish: changed %v, etag %q, %v", changed, got, err)
				}
				// Right after the publish the file server's date is too
				// recent to trust: the next tick fetches again, and still
				// sees the change.
				if got := versions(t); got != "1.1-1 1.0-1" {
					t.Errorf("versions %q, want 1.1-1 1.0-1", got)
				}
			})
			t.Run("a publish within the second of the last one is seen", func(t *testing.T) {
				_, etag, err := r.Check(ctx, "production", "")
				if err != nil {
					t.Fatal(err)
				}
				publish("1.2-1")
				changed, _, err := r.Check(ctx, "production", etag)
				if err != nil || !changed {
					t.Errorf("a publish right after a check: changed %v, %v", changed, err)
				}
			})
			t.Run("another key's signature is refused", func(t *testing.T) {
				other := repotest.NewKey(t, t.TempDir(), "")
				bad := &repo.Reader{Store: s, Keyring: other.Signer.Keyring()}
				if _, err := bad.Index(ctx, "production"); !errors.Is(err, repo.ErrBadSignature) {
					t.Errorf("read with another key: %v, want ErrBadSignature", err)
				}
			})
			t.Run("a rewritten index is refused", func(t *testing.T) {
				idx, _ := filepath.Glob(filepath.Join(root, "dists/production/main/binary-amd64/by-hash/SHA256/*"))
				if len(idx) == 0 {
					t.Fatal("no by-hash index")
				}
				for _, p := range idx {
					os.WriteFile(p, []byte("Package: evil\n"), 0o644)
				}
				os.Remove(filepath.Join(root, "dists/production/main/binary-amd64/Packages.gz"))
				os.Remove(filepath.Join(root, "dists/production/main/binary-amd64/Packages"))
				if _, err := r.Index(ctx, "production"); err == nil {
					t.Error("an index that does not match InRelease was accepted")
				}
			})
			t.Run("writes and listings are refused", func(t *testing.T) {
				if _, err := s.Put(ctx, "x", strings.NewReader("x"), 1, repo.PutOptions{}); !errors.Is(err, web.ErrReadOnly) {
					t.Errorf("Put: %v", err)
				}
				if err := s.List(ctx, "dists/", func(repo.Object) error { return nil }); !errors.Is(err, web.ErrReadOnly) {
					t.Errorf("List: %v", err)
				}
				if _, err := s.Head(ctx, "dists/none/InRelease"); !errors.Is(err, repo.ErrNotFound) {
					t.Errorf("Head of a missing key: %v, want ErrNotFound", err)
				}
			})
		})
	}
}
