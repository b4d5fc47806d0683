// Package s3server starts real S3-compatible servers on loopback for tests:
// gofakes3 inside the test process (fast, no signature checks) and versitygw
// as a subprocess (real SigV4 checks; optionally TLS with a generated test CA
// and virtual-host buckets under s3.test, and anonymous reads through a bucket
// policy, which is what apt needs to read a repository over plain HTTP).
//
// Every server stops when its test ends.
package s3server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/aptfleet/aptfleet/internal/testenv"
)

// Server is a running S3-compatible server with one bucket.
type Server struct {
	// URL is the endpoint clients use: http://127.0.0.1:PORT, or with TLS
	// https://s3.test:PORT (the name resolves through HTTPClient only).
	URL string
	// Addr is the host:port the server listens on (127.0.0.1:PORT).
	Addr string
	// Bucket was created empty when the server started.
	Bucket string
	// Region, AccessKey and SecretKey are the credentials the server accepts.
	Region, AccessKey, SecretKey string
	// PathStyle says whether clients must address the bucket path-style
	// (true unless the server runs with virtual-host buckets).
	PathStyle bool
	// Domain is the virtual-host base domain ("s3.test"), or "".
	Domain string
	// CAFile is the PEM file of the test CA that signed the server's
	// certificate (TLS only); CertFile and KeyFile are the server's.
	CAFile, CertFile, KeyFile string
	// HTTPClient trusts the test CA and sends every *.s3.test name to
	// 127.0.0.1; plain http.DefaultClient suffices without TLS.
	HTTPClient *http.Client
	// Root is versitygw's posix backend directory ("" for gofakes3).
	Root string
	// Process is versitygw's process (nil for gofakes3), for tests that
	// stop it (SIGSTOP) to see what clients do with a hung server.
	Process *os.Process
}

// Client returns an aws-sdk-go-v2 S3 client for the server with its static
// credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.URL),
		UsePathStyle:               s.PathStyle,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:                 s.HTTPClient,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// ObjectURL is the anonymous HTTP(S) URL of key in the bucket, as apt would
// fetch it.
func (s *Server) ObjectURL(key string) string {
	if s.PathStyle {
		return s.URL + "/" + s.Bucket + "/" + key
	}
	scheme, host, _ := strings.Cut(s.URL, "://")
	return scheme + "://" + s.Bucket + "." + host + "/" + key
}

// GoFakeS3 starts gofakes3 (in-memory backend) in the test process with an
// empty bucket named bucket. gofakes3 does not check signatures. wrap, if not
// nil, wraps the server's handler (to count or inspect requests).
func GoFakeS3(t testing.TB, bucket string, wrap func(http.Handler) http.Handler) *Server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatalf("gofakes3: create bucket %s: %v", bucket, err)
	}
	h := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &Server{
		URL:        ts.URL,
		Addr:       ts.Listener.Addr().String(),
		Bucket:     bucket,
		Region:     "us-east-1",
		AccessKey:  "gofakes3",
		SecretKey:  "gofakes3-secret",
		PathStyle:  true,
		HTTPClient: ts.Client(),
	}
}

// VersitygwOptions chooses how versitygw runs.
type VersitygwOptions struct {
	// Bucket to create. Default "aptfleet".
	Bucket string
	// TLS serves https with a certificate for s3.test and *.s3.test (and
	// 127.0.0.1) signed by a CA generated for the test.
	TLS bool
	// VirtualHost enables virtual-host bucket addressing under s3.test
	// (BUCKET.s3.test:PORT); path-style keeps working too.
	VirtualHost bool
	// AnonymousRead attaches a bucket policy that lets anyone GET objects.
	AnonymousRead bool
}

// Binary returns the versitygw executable: on PATH, or in the module's
// .tools directory where `make tools` installs it.
func Binary() (string, bool) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, true
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".tools", "versitygw")
			_, err := os.Stat(p)
			return p, err == nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Versitygw starts versitygw (posix backend in a temporary directory) on a
// random loopback port with one empty bucket. It skips the test (fails under
// CI) when the binary is missing.
func Versitygw(t testing.TB, opts VersitygwOptions) *Server {
	t.Helper()
	bin, ok := Binary()
	if !ok {
		testenv.Skip(t, "versitygw is not installed (run `make tools`)")
	}
	if opts.Bucket == "" {
		opts.Bucket = "aptfleet"
	}
	dir := t.TempDir()
	s := &Server{
		Bucket:     opts.Bucket,
		Region:     "us-east-1",
		AccessKey:  "AKIAAPTFLEETTEST0001",
		SecretKey:  "aptfleet-test-secret-key-0123456789abcdef",
		PathStyle:  !opts.VirtualHost,
		Root:       filepath.Join(dir, "root"),
		HTTPClient: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	if err := os.Mkdir(s.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region, "--quiet"}
	scheme, host := "http", "127.0.0.1"
	if opts.TLS {
		ca, err := WriteTestPKI(dir, "s3.test")
		if err != nil {
			t.Fatalf("test PKI: %v", err)
		}
		s.CAFile, s.CertFile, s.KeyFile = ca.CAFile, ca.CertFile, ca.KeyFile
		args = append(args, "--cert", s.CertFile, "--key", s.KeyFile)
		scheme, host = "https", "s3.test"
		tr := s.HTTPClient.Transport.(*http.Transport)
		tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool}
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			h, port, err := net.SplitHostPort(addr)
			if err == nil && (h == "s3.test" || strings.HasSuffix(h, ".s3.test")) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return dialer.DialContext(ctx, network, addr)
		}
	}
	if opts.VirtualHost {
		s.Domain = "s3.test"
		args = append(args, "--virtual-domain", s.Domain)
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("versitygw: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", port)
		s.URL = scheme + "://" + net.JoinHostPort(host, port)
		if lastErr = startVersitygw(t, bin, append(args, "--port", s.Addr, "posix", s.Root), s); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("versitygw: %v", lastErr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Create the bucket path-style: virtual-host names need the bucket to
	// exist already on some servers.
	admin := *s
	admin.PathStyle = true
	c := admin.Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("versitygw: create bucket %s: %v", s.Bucket, err)
	}
	if opts.AnonymousRead {
		policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, s.Bucket)
		if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(s.Bucket), Policy: aws.String(policy)}); err != nil {
			t.Fatalf("versitygw: anonymous-read bucket policy: %v", err)
		}
	}
	return s
}

// Stop stops versitygw with SIGSTOP and returns once every one of its
// threads is stopped, so the next request meets a hung server.
func Stop(t testing.TB, s *Server) {
	t.Helper()
	if err := s.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", s.Process.Pid))
		running := len(tasks) == 0
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			// The state follows the command name in parentheses.
			if i := strings.LastIndexByte(string(b), ')'); err == nil && i > 0 && i+2 < len(b) && b[i+2] != 'T' {
				running = true
			}
		}
		if !running {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("versitygw (pid %d) did not stop within 10s of SIGSTOP", s.Process.Pid)
}

// startVersitygw runs the binary and waits until it answers HTTP.
func startVersitygw(t testing.TB, bin string, args []string, s *Server) error {
	logf, err := os.Create(filepath.Join(filepath.Dir(s.Root), fmt.Sprintf("versitygw-%d.log", time.Now().UnixNano())))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the test binary even when it is killed before its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("exited early (%v): %s", err, strings.TrimSpace(string(out)))
		default:
		}
		resp, err := s.HTTPClient.Get(s.URL + "/")
		if err == nil {
			resp.Body.Close()
			s.Process = cmd.Process
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGCONT)
				stop()
			})
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	out, _ := os.ReadFile(logf.Name())
	return fmt.Errorf("did not answer on %s within 20s: %s", s.URL, strings.TrimSpace(string(out)))
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// PKI is a generated test CA and one server certificate it signed.
type PKI struct {
	CAFile, CertFile, KeyFile string
	Pool                      *x509.CertPool
}
