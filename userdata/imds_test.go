package userdata_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/userdata"
)

// heredoc returns the body of the script's here-document ending in tag.
func heredoc(t *testing.T, script, tag string) string {
	t.Helper()
	start := strings.Index(script, "<<'"+tag+"'\n")
	if start < 0 {
		t.Fatalf("script has no here-document %s", tag)
	}
	body := script[start+len(tag)+5:]
	end := strings.Index(body, "\n"+tag+"\n")
	if end < 0 {
		t.Fatalf("here-document %s does not end", tag)
	}
	return body[:end+1]
}

// TestIMDSRootOnly applies the nftables rules the EC2 user-data installs in a
// network namespace of the test's own (unshare --net), where an HTTP server
// listens on the metadata address 169.254.169.254:80 (no metadata service
// runs here). Before the rules, an unprivileged user (nobody, as the app's
// service user would be) reaches it; after them it is refused and root still
// gets the answer. The unit that re-applies the rules at boot runs them with
// nft before network-pre.target. Hosts given static keys (no metadata
// service) do not get the step.
func TestIMDSRootOnly(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "nft", "unshare", "setpriv", "ip", "python3", "curl")
	out, err := userdata.Render(minimal(t))
	if err != nil {
		t.Fatal(err)
	}
	script := string(out)
	unit := heredoc(t, script, "UNIT")
	var rules string
	for _, line := range strings.Split(unit, "\n") {
		if r, ok := strings.CutPrefix(line, "ExecStart=/usr/sbin/nft '"); ok {
			rules = strings.TrimSuffix(r, "'")
		}
	}
	if rules == "" || !strings.Contains(unit, "Before=network-pre.target") || !strings.Contains(unit, "WantedBy=sysinit.target") {
		t.Fatalf("the boot unit does not apply nft rules before the network:\n%s", unit)
	}
	if !strings.Contains(script, "systemctl enable --now aptfleet-imds.service") {
		t.Error("the unit is not enabled (and run) at first boot")
	}
	if strings.Index(script, `step "restrict instance metadata to root"`) > strings.Index(script, `step "install the puller"`) {
		t.Error("metadata is restricted after the puller and the app are installed")
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "imds.nft")
	if err := os.WriteFile(file, []byte(rules+"\n"), 0o644); err != nil { // nft -f reads what nft ARGS would
		t.Fatal(err)
	}
	prog := `set -u
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
cd "$DIR" && echo instance-role-credentials > latest
python3 -m http.server --bind 169.254.169.254 80 >/dev/null 2>&1 &
for i in $(seq 50); do curl -fsS -m 2 http://169.254.169.254/latest >/dev/null 2>&1 && break; sleep 0.1; done
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups curl -fsS -m 5 http://169.254.169.254/latest; }
echo "before nobody: $(as_nobody 2>/dev/null || echo refused)"
nft -f "$FILE" || exit 1
nft -f "$FILE" || exit 1 # re-applied at every boot: must not stack
echo "after nobody: $(as_nobody 2>/dev/null || echo refused)"
echo "after root: $(curl -fsS -m 5 http://169.254.169.254/latest || echo refused)"
echo "rules: $(nft list chain inet aptfleet_imds output | grep -c reject)"
kill %1
`
	cmd := exec.Command("unshare", "--net", "bash", "-c", prog)
	cmd.Env = append(os.Environ(), "DIR="+dir, "FILE="+file)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	for _, want := range []string{
		"before nobody: instance-role-credentials", // the check can fail: without the rules anyone reaches it
		"after nobody: refused",
		"after root: instance-role-credentials",
		"rules: 2",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("want %q in:\n%s", want, got)
		}
	}

	c := minimal(t)
	c.AccessKeyID, c.SecretAccessKey = "AKIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	if out, err := userdata.Render(c); err != nil || strings.Contains(string(out), "aptfleet-imds") {
		t.Errorf("a host with static keys (no metadata service) gets the metadata step: %v", err)
	}
}
