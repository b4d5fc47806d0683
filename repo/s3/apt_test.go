package s3_test

import (
	"crypto/sha256"
	"os"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

func sha(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestAptTransportS3 publishes to versitygw over TLS with virtual-host
// buckets and has apt read the repository with Debian's apt-transport-s3
// (signed requests, s3:// source line), checking the repository signature.
func TestAptTransportS3(t *testing.T) {
	testenv.NeedTools(t, "apt-get", "unshare", "mount")
	testenv.NeedRoot(t)
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{TLS: true, VirtualHost: true})
	dir := t.TempDir()
	method := srv.AptTransportS3(t, dir)
	key := repotest.NewKey(t, dir, "")
	deb := debs.Write(t, dir, debs.Spec{Name: "hello", Version: "2.0-1"})
	r := &repo.Repo{Store: newStore(t, srv, "apt/hello"), Signer: key.Signer}
	if _, err := r.Publish(t.Context(), "production", "", []string{deb}); err != nil {
		t.Fatalf("publish: %v", err)
	}

	a := testenv.NewAptSource(t, "deb [signed-by="+key.Keyring+"] s3://"+srv.Bucket+"/apt/hello production main")
	apt := func(args ...string) (string, error) {
		return a.RunCmd(method.Command(t.Context(), "apt-get", a.Args(append(append([]string{}, method.Options...), args...)...)...))
	}
	if out, err := apt("--error-on=any", "update"); err != nil {
		t.Fatalf("apt-get update through apt-transport-s3: %v\n%s", err, out)
	}
	if out, err := apt("download", "hello"); err != nil {
		t.Fatalf("apt-get download through apt-transport-s3: %v\n%s", err, out)
	}
	if sha(t, a.Downloaded("hello_2.0-1_amd64.deb")) != sha(t, deb) {
		t.Errorf("downloaded .deb differs from the published one")
	}
	// The bucket has no anonymous-read policy: the method's signed
	// requests got through. With another repository key apt must refuse.
	other := repotest.NewKey(t, dir, "")
	a = testenv.NewAptSource(t, "deb [signed-by="+other.Keyring+"] s3://"+srv.Bucket+"/apt/hello production main")
	if out, err := apt("--error-on=any", "update"); err == nil || !strings.Contains(out, "NO_PUBKEY") {
		t.Errorf("apt-get update with the wrong key: err %v, want a NO_PUBKEY failure:\n%s", err, out)
	}
	if b, err := os.ReadFile("/etc/hosts"); err == nil && string(b) == mustRead(t, method.HostsFile) {
		t.Errorf("the machine's /etc/hosts was replaced")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
