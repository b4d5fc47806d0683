package s3_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
	"github.com/aptfleet/aptfleet/repo/s3"
)

// withTimeout opens a store on srv whose requests time out after d without
// progress.
func withTimeout(t *testing.T, srv *s3server.Server, prefix string, d time.Duration) *s3.Store {
	t.Helper()
	st, err := s3.New(t.Context(), s3.Config{
		Bucket: srv.Bucket, Prefix: prefix, Region: srv.Region, Endpoint: srv.URL, PathStyle: srv.PathStyle,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		Timeout:     d,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// within runs fn and fails t if it has not returned after limit: a hung
// client is the defect these tests look for.
func within(t *testing.T, limit time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s still running after %s against a stopped server", what, limit)
		return nil
	}
}

// TestStoppedServer stops versitygw (SIGSTOP) at two moments: before a
// command starts, and just before a publish's commit, after its indexes went
// up. Every request must give up after the timeout with an error naming
// the endpoint, and once the server runs again, the repository must show
// what the command reported: the commit it said failed never lands.
func TestStoppedServer(t *testing.T) {
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{})
	dir := t.TempDir()
	key := repotest.NewKey(t, dir, "")
	r := &repo.Repo{Store: withTimeout(t, srv, "apt", 2*time.Second), Signer: key.Signer}
	ctx := context.Background()
	if _, err := r.Publish(ctx, "staging", "", []string{debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.0-1"})}); err != nil {
		t.Fatal(err)
	}
	stop := func() { s3server.Stop(t, srv) }
	cont := func() {
		if err := srv.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	has := func(v string) bool {
		t.Helper()
		var pkgs []repo.Package
		err := within(t, time.Minute, "list", func() (err error) { pkgs, err = r.List(ctx, "staging"); return err })
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(strings.Join(names(pkgs), ","), "hello "+v)
	}
	oneLine := func(err error) {
		t.Helper()
		var stall *s3.StallError
		if !errors.As(err, &stall) || !strings.Contains(err.Error(), srv.URL) || strings.Contains(err.Error(), "\n") ||
			strings.Contains(err.Error(), "StatusCode") {
			t.Errorf("want one line naming %s without SDK text, got %v", srv.URL, err)
		}
	}

	t.Run("stopped before", func(t *testing.T) {
		stop()
		err := within(t, time.Minute, "list", func() error { _, err := r.List(ctx, "staging"); return err })
		oneLine(err)
		err = within(t, time.Minute, "publish", func() error {
			_, err := r.Publish(ctx, "staging", "", []string{debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.1-1"})})
			return err
		})
		oneLine(err)
		cont()
		time.Sleep(time.Second)
		if has("1.1-1") {
			t.Errorf("a publish that failed against a stopped server is in the dist once the server runs again")
		}
	})

	t.Run("stopped at the commit", func(t *testing.T) {
		r.AfterStep = func(step string) {
			if step == repo.StepIndexes {
				stop()
			}
		}
		defer func() { r.AfterStep = nil }()
		err := within(t, time.Minute, "publish", func() error {
			_, err := r.Publish(ctx, "staging", "", []string{debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.2-1"})})
			return err
		})
		cont()
		r.AfterStep = nil
		oneLine(err)
		time.Sleep(2 * time.Second) // the server works off what it had queued
		switch in := has("1.2-1"); {
		case err == nil && !in:
			t.Errorf("publish reported success, but the dist does not have 1.2-1")
		case err != nil && in && !errors.Is(err, repo.ErrUnknownOutcome):
			t.Errorf("publish reported failure (%v), but the dist has 1.2-1 once the server runs again", err)
		case errors.Is(err, repo.ErrUnknownOutcome):
			t.Errorf("publish could not tell whether its commit is in (%v): the body should not have gone to a stopped server", err)
		}
	})
}

func names(pkgs []repo.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.String())
	}
	return out
}
