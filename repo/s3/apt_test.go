package s3_test

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

// apt is apt-get with its own configuration, lists and cache, reading one
// source line and never the machine's.
type apt struct {
	t   *testing.T
	dir string
}

func newApt(t *testing.T, source string) apt {
	t.Helper()
	testenv.NeedTools(t, "apt-get")
	testenv.NeedRoot(t) // apt's download sandbox user is root here
	a := apt{t: t, dir: t.TempDir()}
	for _, d := range []string{"parts", "sparts", "lists/partial", "cache/archives/partial", "work"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a.dir, "sources.list"), []byte(source+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return a
}

// args returns apt-get's arguments: the isolating options, then args.
func (a apt) args(args ...string) []string {
	base := []string{
		"-o", "Dir::Etc::main=/dev/null",
		"-o", "Dir::Etc::parts=" + filepath.Join(a.dir, "parts"),
		"-o", "Dir::Etc::sourcelist=" + filepath.Join(a.dir, "sources.list"),
		"-o", "Dir::Etc::sourceparts=" + filepath.Join(a.dir, "sparts"),
		"-o", "Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(a.dir, "cache"),
		"-o", "Dir::State::status=/dev/null",
		"-o", "APT::Sandbox::User=root",
		"-o", "APT::Architecture=amd64",
		"-o", "Acquire::Retries=0",
	}
	return append(base, args...)
}

// run runs apt-get args, in the work directory where downloads land.
func (a apt) run(args ...string) (string, error) {
	a.t.Helper()
	return a.runCmd(exec.CommandContext(a.t.Context(), "apt-get", a.args(args...)...))
}

func (a apt) runCmd(cmd *exec.Cmd) (string, error) {
	cmd.Dir = filepath.Join(a.dir, "work")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

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

	a := newApt(t, "deb [signed-by="+key.Keyring+"] s3://"+srv.Bucket+"/apt/hello production main")
	apt := func(args ...string) (string, error) {
		return a.runCmd(method.Command(t.Context(), "apt-get", a.args(append(append([]string{}, method.Options...), args...)...)...))
	}
	if out, err := apt("--error-on=any", "update"); err != nil {
		t.Fatalf("apt-get update through apt-transport-s3: %v\n%s", err, out)
	}
	if out, err := apt("download", "hello"); err != nil {
		t.Fatalf("apt-get download through apt-transport-s3: %v\n%s", err, out)
	}
	if sha(t, filepath.Join(a.dir, "work", "hello_2.0-1_amd64.deb")) != sha(t, deb) {
		t.Errorf("downloaded .deb differs from the published one")
	}
	// The bucket has no anonymous-read policy: the method's signed
	// requests got through. With another repository key apt must refuse.
	other := repotest.NewKey(t, dir, "")
	a = newApt(t, "deb [signed-by="+other.Keyring+"] s3://"+srv.Bucket+"/apt/hello production main")
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
