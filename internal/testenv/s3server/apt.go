package s3server

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
)

// AptS3 is what Debian's apt-transport-s3 (2.1.0) needs to reach a server
// started with TLS and VirtualHost: the method only speaks HTTPS to
// BUCKET.<Endpoint>, reads its settings from a file, and resolves names
// through /etc/hosts.
type AptS3 struct {
	// ConfFile is the method's s3auth.conf (keys, region, endpoint).
	ConfFile string
	// Method is a wrapper that runs the real method with ConfFile; apt
	// finds it through Options.
	Method string
	// HostsFile maps BUCKET.s3.test and s3.test to 127.0.0.1.
	HostsFile string
	// Options are apt-get arguments that select the wrapper method.
	Options []string
	// Env trusts the test CA in the (Python) method.
	Env []string
}

// AptTransportS3 writes the method's configuration into dir. Run apt with
// AptS3.Command so that HostsFile is the /etc/hosts it sees. The server
// must run with TLS and VirtualHost.
func (s *Server) AptTransportS3(t testing.TB, dir string) AptS3 {
	t.Helper()
	if s.Domain == "" || s.CAFile == "" {
		t.Fatalf("apt-transport-s3 needs a server started with TLS and VirtualHost")
	}
	const method = "/usr/lib/apt/methods/s3"
	if _, err := os.Stat(method); err != nil {
		testenv.Skip(t, "apt-transport-s3 is not installed (run `make deps`)")
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(s.URL, "https://"), ":")
	a := AptS3{
		ConfFile:  filepath.Join(dir, "s3auth.conf"),
		Method:    filepath.Join(dir, "s3-method"),
		HostsFile: filepath.Join(dir, "hosts"),
		Env:       []string{"SSL_CERT_FILE=" + s.CAFile},
	}
	conf := fmt.Sprintf("AccessKeyId = %s\nSecretAccessKey = %s\nRegion = %s\nEndpoint = %s:%s\n",
		s.AccessKey, s.SecretKey, s.Region, s.Domain, port)
	hosts := fmt.Sprintf("127.0.0.1 localhost %s %s.%s\n", s.Domain, s.Bucket, s.Domain)
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s %s\n", method, a.ConfFile)
	for _, f := range []struct {
		path, data string
		mode       os.FileMode
	}{
		{a.ConfFile, conf, 0o600},
		{a.HostsFile, hosts, 0o644},
		{a.Method, wrapper, 0o755},
	} {
		if err := os.WriteFile(f.path, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	a.Options = []string{"-o", "Dir::Bin::Methods::s3=" + a.Method}
	return a
}

// Command returns name args run in a private mount namespace in which
// HostsFile is bind-mounted over /etc/hosts (the machine's file is not
// touched), with Env added. It needs root and unshare(1).
func (a AptS3) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	script := `mount --bind "$0" /etc/hosts && exec "$@"`
	cmd := exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, a.HostsFile, name}, args...)...)
	cmd.Env = append(os.Environ(), a.Env...)
	return cmd
}
