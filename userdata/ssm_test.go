package userdata_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/userdata"
)

// ssmStandIn is a hand-written stand-in for the SSM API's GetParameter (no
// SSM implementation runs here). It checks what AWS would: the target, the
// JSON body, and the SigV4 signature (recomputed with aws-sdk-go-v2's signer
// over the headers the client signed), then answers like SSM.
type ssmStandIn struct {
	*httptest.Server
	region, keyID, secret string
	params                map[string]string

	mu    sync.Mutex
	calls []string // parameter names served
	errs  []string // rejected requests
}

func newSSMStandIn(t *testing.T, region, keyID, secret string, params map[string]string) *ssmStandIn {
	s := &ssmStandIn{region: region, keyID: keyID, secret: secret, params: params}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *ssmStandIn) reject(w http.ResponseWriter, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.errs = append(s.errs, msg)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"__type": "AccessDeniedException", "message": msg})
}

func (s *ssmStandIn) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if got := r.Header.Get("X-Amz-Target"); got != "AmazonSSM.GetParameter" {
		s.reject(w, http.StatusBadRequest, "target %q", got)
		return
	}
	if err := s.verify(r, body); err != nil {
		s.reject(w, http.StatusForbidden, "signature: %v", err)
		return
	}
	var in struct {
		Name           string
		WithDecryption bool
	}
	if err := json.Unmarshal(body, &in); err != nil || !in.WithDecryption {
		s.reject(w, http.StatusBadRequest, "body %q", body)
		return
	}
	value, ok := s.params[in.Name]
	if !ok {
		s.reject(w, http.StatusBadRequest, "ParameterNotFound %s", in.Name)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, in.Name)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
		"Name": in.Name, "Type": "SecureString", "Value": value, "Version": 1,
	}})
}

// verify recomputes the request's SigV4 signature over the headers it signed.
func (s *ssmStandIn) verify(r *http.Request, body []byte) error {
	auth := r.Header.Get("Authorization")
	prefix := "AWS4-HMAC-SHA256 Credential=" + s.keyID + "/"
	if !strings.HasPrefix(auth, prefix) {
		return fmt.Errorf("authorization %q is not SigV4 for key %s", auth, s.keyID)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[2] != s.region || scope[3] != "ssm" {
		return fmt.Errorf("credential scope %q, want region %s service ssm", fields["Credential"], s.region)
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("x-amz-date: %v", err)
	}
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	req.Host = r.Host
	req.ContentLength = 0 // the client did not sign it; the SDK would add it
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h == "host" {
			continue
		}
		req.Header.Set(h, r.Header.Get(h))
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: s.keyID, SecretAccessKey: s.secret}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, req, hex.EncodeToString(sum[:]), "ssm", s.region, when); err != nil {
		return err
	}
	_, want, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	if fields["Signature"] != want {
		return fmt.Errorf("signature mismatch (signed headers %s)", fields["SignedHeaders"])
	}
	return nil
}

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
			ssm := newSSMStandIn(t, c.Region, c.AccessKeyID, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
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
			ssm.mu.Lock()
			defer ssm.mu.Unlock()
			if !tc.ok {
				if err == nil {
					t.Fatalf("a wrong secret fetched %q", got)
				}
				if len(ssm.errs) == 0 || !strings.Contains(ssm.errs[0], "signature mismatch") {
					t.Errorf("stand-in rejections: %q", ssm.errs)
				}
				return
			}
			if err != nil {
				t.Fatalf("ssm_parameter: %v\n%s\nstand-in rejected: %q", err, stderr.Bytes(), ssm.errs)
			}
			if string(got) != "s3cr3t token with spaces & \"quotes\"" {
				t.Errorf("ssm_parameter printed %q", got)
			}
			if len(ssm.calls) != 1 {
				t.Errorf("stand-in served %q", ssm.calls)
			}
		})
	}
}
