package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// VerifySigV4 recomputes a request's SigV4 signature over the headers it
// signed, with aws-sdk-go-v2's own signer, for the hand-written stand-ins of
// AWS APIs that cannot run here: nil when it is what AWS would accept from
// keyID/secret for service in region.
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
	req.ContentLength = 0 // the signer adds it only when the client signed it
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
	if got := r.Header.Get("X-Amz-Content-Sha256"); got != "" && got != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("x-amz-content-sha256 %s does not match the body", got)
	}
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
