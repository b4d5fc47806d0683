package awsstub

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch is a hand-written stand-in for the CloudWatch API's
// DescribeAlarms (no CloudWatch implementation runs here). It speaks the
// protocol aws-sdk-go-v2 uses for CloudWatch (Smithy RPCv2 CBOR: POST
// /service/GraniteServiceVersion20100801/operation/DescribeAlarms with a
// CBOR body), checks every request's SigV4 signature with the SDK's own
// signer, and answers like CloudWatch from the alarms a test sets.
type CloudWatch struct {
	*httptest.Server
	Region, KeyID, Secret string

	mu     sync.Mutex
	alarms map[string]cwAlarm
	calls  [][]string // the alarm names each accepted call asked for
	errs   []string   // rejected requests
	fail   int        // answer the next fail calls with a 500
}

type cwAlarm struct {
	state, reason string
	updated       time.Time
	composite     bool
}

// NewCloudWatch starts the stand-in for t, accepting keyID/secret in region.
func NewCloudWatch(t testing.TB, region, keyID, secret string) *CloudWatch {
	c := &CloudWatch{Region: region, KeyID: keyID, Secret: secret, alarms: map[string]cwAlarm{}}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.Close)
	return c
}

// SetAlarm creates or updates a metric alarm (composite: a composite alarm).
func (c *CloudWatch) SetAlarm(name, state, reason string, composite bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alarms[name] = cwAlarm{state: state, reason: reason, updated: time.Now().UTC().Truncate(time.Millisecond), composite: composite}
}

// FailNext makes the next n calls answer 500 InternalFailure.
func (c *CloudWatch) FailNext(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = n
}

// Calls returns the alarm names of every accepted DescribeAlarms call.
func (c *CloudWatch) Calls() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]string(nil), c.calls...)
}

// Rejected returns why requests were refused (bad signature, protocol).
func (c *CloudWatch) Rejected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

func (c *CloudWatch) reject(w http.ResponseWriter, code int, typ, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.errs = append(c.errs, msg)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.WriteHeader(code)
	w.Write(cbor.Encode(cbor.Map{"__type": cbor.String(typ), "message": cbor.String(msg)}))
}

func (c *CloudWatch) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/service/GraniteServiceVersion20100801/operation/DescribeAlarms" ||
		r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
		c.reject(w, http.StatusBadRequest, "UnknownOperationException", "%s %s (Smithy-Protocol %q)", r.Method, r.URL.Path, r.Header.Get("Smithy-Protocol"))
		return
	}
	if err := VerifySigV4(r, body, "monitoring", c.Region, c.KeyID, c.Secret); err != nil {
		c.reject(w, http.StatusForbidden, "SignatureDoesNotMatch", "signature: %v", err)
		return
	}
	v, err := cbor.Decode(body)
	in, ok := v.(cbor.Map)
	if err != nil || !ok {
		c.reject(w, http.StatusBadRequest, "SerializationException", "body: %v", err)
		return
	}
	var names []string
	if l, ok := in["AlarmNames"].(cbor.List); ok {
		for _, n := range l {
			s, _ := n.(cbor.String)
			names = append(names, string(s))
		}
	}
	types := map[string]bool{}
	if l, ok := in["AlarmTypes"].(cbor.List); ok {
		for _, n := range l {
			s, _ := n.(cbor.String)
			types[string(s)] = true
		}
	} else {
		types["MetricAlarm"] = true // CloudWatch's default
	}
	if len(names) > 100 {
		c.reject(w, http.StatusBadRequest, "InvalidParameterValue", "%d alarm names, at most 100", len(names))
		return
	}
	c.mu.Lock()
	if c.fail > 0 {
		c.fail--
		c.mu.Unlock()
		c.reject(w, http.StatusInternalServerError, "InternalFailure", "injected failure")
		return
	}
	c.calls = append(c.calls, names)
	metric, composite := cbor.List{}, cbor.List{}
	sort.Strings(names)
	for _, n := range names {
		a, ok := c.alarms[n]
		if !ok {
			continue // CloudWatch leaves unknown names out
		}
		m := cbor.Map{
			"AlarmName":             cbor.String(n),
			"AlarmArn":              cbor.String("arn:aws:cloudwatch:" + c.Region + ":123456789012:alarm:" + n),
			"StateValue":            cbor.String(a.state),
			"StateReason":           cbor.String(a.reason),
			"StateUpdatedTimestamp": &cbor.Tag{ID: 1, Value: cbor.Float64(float64(a.updated.UnixMilli()) / 1000)},
		}
		switch {
		case a.composite && types["CompositeAlarm"]:
			composite = append(composite, m)
		case !a.composite && types["MetricAlarm"]:
			metric = append(metric, m)
		}
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Write(cbor.Encode(cbor.Map{"MetricAlarms": metric, "CompositeAlarms": composite}))
}
