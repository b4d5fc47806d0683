// Package awsstub holds hand-written stand-ins for the AWS APIs that no
// implementation runs for here: Parameter Store's GetParameter, CloudWatch's
// DescribeAlarms, and the SigV4 check every stand-in applies. They speak each API's wire protocol,
// so the real clients (aws-sdk-go-v2, curl --aws-sigv4) make the calls; they
// are stand-ins, not AWS, and check only what is written here.
package awsstub

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ParameterStore is a stand-in for the SSM API's GetParameter. It checks
// what AWS would: the target, the JSON body (WithDecryption set), and the
// SigV4 signature made with the one key it knows; then it answers like SSM
// (ParameterNotFound for a name it does not hold).
type ParameterStore struct {
	*httptest.Server
	Region, KeyID, Secret string

	mu     sync.Mutex
	params map[string]string
	calls  []string // parameter names served
	errs   []string // rejected requests
}

// NewParameterStore starts a stand-in on loopback holding params (name ->
// SecureString value), closed when t ends.
func NewParameterStore(t testing.TB, region, keyID, secret string, params map[string]string) *ParameterStore {
	t.Helper()
	s := &ParameterStore{Region: region, KeyID: keyID, Secret: secret, params: map[string]string{}}
	for k, v := range params {
		s.params[k] = v
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Set stores or replaces a parameter.
func (s *ParameterStore) Set(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.params[name] = value
}

// Calls returns the names of the parameters served, in order.
func (s *ParameterStore) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// Rejections returns why each refused request was refused, in order.
func (s *ParameterStore) Rejections() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

func (s *ParameterStore) reject(w http.ResponseWriter, code int, typ, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.errs = append(s.errs, msg)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func (s *ParameterStore) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if got := r.Header.Get("X-Amz-Target"); got != "AmazonSSM.GetParameter" {
		s.reject(w, http.StatusBadRequest, "InvalidAction", "target %q", got)
		return
	}
	if err := VerifySigV4(r, body, "ssm", s.Region, s.KeyID, s.Secret); err != nil {
		s.reject(w, http.StatusForbidden, "AccessDeniedException", "signature: %v", err)
		return
	}
	var in struct {
		Name           string
		WithDecryption bool
	}
	if err := json.Unmarshal(body, &in); err != nil || !in.WithDecryption {
		s.reject(w, http.StatusBadRequest, "ValidationException", "body %q", body)
		return
	}
	s.mu.Lock()
	value, ok := s.params[in.Name]
	s.mu.Unlock()
	if !ok {
		s.reject(w, http.StatusBadRequest, "ParameterNotFound", "ParameterNotFound %s", in.Name)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, in.Name)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
		"Name": in.Name, "Type": "SecureString", "Value": value, "Version": 1,
		"ARN": "arn:aws:ssm:" + s.Region + ":111122223333:parameter/" + strings.TrimPrefix(in.Name, "/"), "DataType": "text",
	}})
}

// VerifySigV4 recomputes the request's SigV4 signature over the headers it
// signed, with aws-sdk-go-v2's signer, and compares it with the one sent.
func VerifySigV4(r *http.Request, body []byte, service, region, keyID, secret string) error {
	auth := r.Header.Get("Authorization")
	prefix := "AWS4-HMAC-SHA256 Credential=" + keyID + "/"
	if !strings.HasPrefix(auth, prefix) {
		return fmt.Errorf("authorization %q is not SigV4 for key %s", auth, keyID)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[2] != region || scope[3] != service {
		return fmt.Errorf("credential scope %q, want region %s service %s", fields["Credential"], region, service)
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("x-amz-date: %v", err)
	}
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	req.Host = r.Host
	req.ContentLength = 0 // signed only when the client signed it (curl does not, the SDK does)
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			req.ContentLength = int64(len(body))
		default:
			req.Header.Set(h, r.Header.Get(h))
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, req, hex.EncodeToString(sum[:]), service, region, when); err != nil {
		return err
	}
	_, want, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	if fields["Signature"] != want {
		return fmt.Errorf("signature mismatch (signed headers %s)", fields["SignedHeaders"])
	}
	return nil
}
