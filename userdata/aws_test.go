package userdata_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/awsstub"
	"github.com/aptfleet/aptfleet/userdata"
)

// shellFunction returns the definition of the shell function name in script.
func shellFunction(t *testing.T, script, name string) string {
	t.Helper()
	start := strings.Index(script, "\n"+name+"() {\n")
	if start < 0 {
		t.Fatalf("script has no function %s", name)
	}
	end := strings.Index(script[start:], "\n}\n")
	if end < 0 {
		t.Fatalf("function %s does not end", name)
	}
	return script[start+1 : start+end+3]
}

// shellPrologue returns the script's variable assignments (up to the log
// redirection), without running any step.
func shellPrologue(t *testing.T, script string) string {
	t.Helper()
	end := strings.Index(script, "\nexec > ")
	if end < 0 {
		t.Fatal("script has no log redirection")
	}
	return script[:end+1]
}

// TestSSMParameter runs the script's own SSM functions (curl --aws-sigv4,
// credentials through stdin, python3 for JSON) against the stand-in, which
// verifies the signature; a wrong secret must be refused.
func TestSSMParameter(t *testing.T) {
	testenv.NeedTools(t, "bash", "curl", "python3")
	for _, tc := range []struct {
		name, secret string
		ok           bool
	}{
		{"right secret", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", true},
		{"wrong secret", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := lab(t)
			ssm := awsstub.NewParameterStore(t, c.Region, c.AccessKeyID, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
				map[string]string{"/aptfleet/redis-auth": "s3cr3t token with spaces & \"quotes\""})
			c.SSMEndpoint = ssm.URL
			c.SecretAccessKey = tc.secret
			out, err := userdata.Render(c)
			if err != nil {
				t.Fatal(err)
			}
			script := string(out)
			var prog strings.Builder
			prog.WriteString(shellPrologue(t, script))
			for _, fn := range []string{"json_field", "aws_call", "ssm_parameter", "aws_credentials"} {
				prog.WriteString(shellFunction(t, script, fn))
			}
			prog.WriteString("aws_credentials\nssm_parameter \"$REDIS_AUTH_PARAMETER\"\n")
			cmd := exec.Command("bash", "-c", prog.String())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			got, err := cmd.Output()
			calls, errs := ssm.Calls(), ssm.Rejections()
			if !tc.ok {
				if err == nil {
					t.Fatalf("a wrong secret fetched %q", got)
				}
				if len(errs) == 0 || !strings.Contains(errs[0], "signature mismatch") {
					t.Errorf("stand-in rejections: %q", errs)
				}
				return
			}
			if err != nil {
				t.Fatalf("ssm_parameter: %v\n%s\nstand-in rejected: %q", err, stderr.Bytes(), errs)
			}
			if string(got) != "s3cr3t token with spaces & \"quotes\"" {
				t.Errorf("ssm_parameter printed %q", got)
			}
			if len(calls) != 1 {
				t.Errorf("stand-in served %q", calls)
			}
		})
	}
}

// describeInstances is a DescribeInstances answer as EC2 gives it (trimmed):
// the primary address of each instance, and again in its network interfaces.
const describeInstances = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
  <reservationSet>
    <item>
      <reservationId>r-1234567890abcdef0</reservationId>
      <ownerId>123456789012</ownerId>
      <instancesSet>
        <item>
          <instanceId>i-0aaaaaaaaaaaaaaa1</instanceId>
          <instanceState><code>16</code><name>running</name></instanceState>
          <privateIpAddress>10.0.1.11</privateIpAddress>
          <networkInterfaceSet><item><privateIpAddress>10.0.1.11</privateIpAddress></item></networkInterfaceSet>
        </item>
        <item>
          <instanceId>i-0aaaaaaaaaaaaaaa2</instanceId>
          <instanceState><code>16</code><name>running</name></instanceState>
          <privateIpAddress>%s</privateIpAddress>
        </item>
      </instancesSet>
    </item>
    <item>
      <reservationId>r-1234567890abcdef1</reservationId>
      <instancesSet>
        <item>
          <instanceId>i-0aaaaaaaaaaaaaaa3</instanceId>
          <privateIpAddress>10.0.2.12</privateIpAddress>
        </item>
      </instancesSet>
    </item>
  </reservationSet>
</DescribeInstancesResponse>
`

// TestASGPeers runs the script's asg_peers against a hand-written
// DescribeInstances stand-in (no EC2 API runs here) that checks the
// signature and the filters; this machine's own address is left out.
func TestASGPeers(t *testing.T) {
	testenv.NeedTools(t, "bash", "curl", "python3", "hostname")
	own, err := exec.Command("hostname", "-I").Output()
	if err != nil || len(strings.Fields(string(own))) == 0 {
		testenv.Skip(t, fmt.Sprintf("no local address from hostname -I (%v)", err))
	}
	self := strings.Fields(string(own))[0]
	c := lab(t)
	c.SerfJoinASG = "hello-production"
	var rejected []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fail := func(msg string) {
			mu.Lock()
			rejected = append(rejected, msg)
			mu.Unlock()
			http.Error(w, msg, http.StatusForbidden)
		}
		if err := awsstub.VerifySigV4(r, body, "ec2", c.Region, c.AccessKeyID, c.SecretAccessKey); err != nil {
			fail(err.Error())
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("Action") != "DescribeInstances" ||
			form.Get("Filter.1.Name") != "tag:aws:autoscaling:groupName" || form.Get("Filter.1.Value.1") != "hello-production" ||
			form.Get("Filter.2.Name") != "instance-state-name" || form.Get("Filter.2.Value.1") != "running" {
			fail("request " + string(body))
			return
		}
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		fmt.Fprintf(w, describeInstances, self)
	}))
	defer srv.Close()
	c.EC2Endpoint = srv.URL
	out, err := userdata.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	script := string(out)
	var prog strings.Builder
	prog.WriteString(shellPrologue(t, script))
	for _, fn := range []string{"json_field", "aws_call", "aws_credentials", "asg_peers"} {
		prog.WriteString(shellFunction(t, script, fn))
	}
	prog.WriteString("set -euo pipefail\naws_credentials\nasg_peers \"$SERF_JOIN_ASG\"\n")
	cmd := exec.Command("bash", "-c", prog.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		t.Fatalf("asg_peers: %v\n%s\nrejected: %q", err, stderr.Bytes(), rejected)
	}
	if want := "10.0.1.11\n10.0.2.12\n"; string(got) != want {
		t.Errorf("asg_peers printed %q, want %q (without this host's %s)", got, want, self)
	}
}
