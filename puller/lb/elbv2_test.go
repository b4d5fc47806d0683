package lb

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

const tgARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/hello/0123456789abcdef"

// fakeELB is a hand-written stand-in for the Elastic Load Balancing v2 query
// API: no load balancer can run here. It keeps one target group and moves a
// target through the states AWS reports: deregistering makes it "draining"
// for drainPolls DescribeTargetHealth calls, then "unused"; registering makes
// it "initial" for healthyPolls calls, then "healthy" (or "unhealthy"
// forever when sick is set).
type fakeELB struct {
	mu           sync.Mutex
	drainPolls   int
	healthyPolls int
	sick         bool
	state        map[string]string // target id -> state
	left         map[string]int    // polls left in a transitional state
	calls        []string          // "Action Id Port"
}

func newFakeELB(t *testing.T, f *fakeELB) *elb.Client {
	f.state, f.left = map[string]string{"i-0123456789abcdef0": "healthy"}, map[string]int{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return elb.New(elb.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  aws.AnonymousCredentials{},
		HTTPClient:   srv.Client(),
	})
}

func (f *fakeELB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	action, id, port := r.Form.Get("Action"), r.Form.Get("Targets.member.1.Id"), r.Form.Get("Targets.member.1.Port")
	f.calls = append(f.calls, strings.TrimSpace(action+" "+id+" "+port))
	w.Header().Set("Content-Type", "text/xml")
	if r.Form.Get("TargetGroupArn") != tgARN {
		w.WriteHeader(400)
		fmt.Fprintf(w, `<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error><Type>Sender</Type><Code>TargetGroupNotFound</Code><Message>One or more target groups not found</Message></Error><RequestId>r1</RequestId></ErrorResponse>`)
		return
	}
	switch action {
	case "DeregisterTargets":
		f.state[id], f.left[id] = "draining", f.drainPolls
		fmt.Fprint(w, `<DeregisterTargetsResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DeregisterTargetsResult/><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></DeregisterTargetsResponse>`)
	case "RegisterTargets":
		f.state[id], f.left[id] = "initial", f.healthyPolls
		fmt.Fprint(w, `<RegisterTargetsResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><RegisterTargetsResult/><ResponseMetadata><RequestId>r3</RequestId></ResponseMetadata></RegisterTargetsResponse>`)
	case "DescribeTargetHealth":
		st, ok := f.state[id]
		if !ok {
			st = "unused"
		}
		switch {
		case st == "draining" && f.left[id] == 0:
			st = "unused"
		case st == "initial" && f.left[id] == 0 && f.sick:
			st = "unhealthy"
		case st == "initial" && f.left[id] == 0:
			st = "healthy"
		default:
			f.left[id]--
		}
		f.state[id] = st
		fmt.Fprintf(w, `<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeTargetHealthResult><TargetHealthDescriptions><member><Target><Id>%s</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>%s</State></TargetHealth></member></TargetHealthDescriptions></DescribeTargetHealthResult><ResponseMetadata><RequestId>r4</RequestId></ResponseMetadata></DescribeTargetHealthResponse>`, id, st)
	default:
		http.Error(w, "unexpected action "+action, 400)
	}
}

// fakeIMDS is a hand-written stand-in for the EC2 instance metadata service
// (IMDSv2: a PUT for a session token, then GETs carrying it); no EC2
// instance runs here.
func fakeIMDS(t *testing.T, id string) (*imds.Client, *int) {
	var mu sync.Mutex
	gets := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
				http.Error(w, "missing ttl", 400)
				return
			}
			w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
			io.WriteString(w, "session-token")
		case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/instance-id":
			if r.Header.Get("X-aws-ec2-metadata-token") != "session-token" {
				http.Error(w, "IMDSv2 token required", 401)
				return
			}
			mu.Lock()
			gets++
			mu.Unlock()
			io.WriteString(w, id)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return imds.New(imds.Options{Endpoint: srv.URL}), &gets
}

func TestELBv2(t *testing.T) {
	tests := []struct {
		name        string
		fake        *fakeELB
		cfg         ELBv2Config
		wantDrain   string // error substring; "" = nil
		wantRestore string
		wantCalls   []string
	}{
		{
			name: "drain and restore",
			fake: &fakeELB{drainPolls: 2, healthyPolls: 2},
			cfg:  ELBv2Config{Port: 8080},
			wantCalls: []string{
				"DeregisterTargets i-0123456789abcdef0 8080",
				"DescribeTargetHealth i-0123456789abcdef0 8080", "DescribeTargetHealth i-0123456789abcdef0 8080", "DescribeTargetHealth i-0123456789abcdef0 8080",
				"RegisterTargets i-0123456789abcdef0 8080",
				"DescribeTargetHealth i-0123456789abcdef0 8080", "DescribeTargetHealth i-0123456789abcdef0 8080", "DescribeTargetHealth i-0123456789abcdef0 8080",
			},
		},
		{
			name:        "drain time passes, then the target never gets healthy",
			fake:        &fakeELB{drainPolls: 1000, sick: true},
			cfg:         ELBv2Config{DrainTime: 200 * time.Millisecond, HealthyTimeout: 200 * time.Millisecond},
			wantRestore: "restore i-0123456789abcdef0 in " + tgARN + ": not healthy within 200ms",
		},
		{
			name:        "unknown target group",
			fake:        &fakeELB{},
			cfg:         ELBv2Config{TargetGroupARN: strings.Replace(tgARN, "hello", "other", 1)},
			wantDrain:   "TargetGroupNotFound",
			wantRestore: "TargetGroupNotFound",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fake
			api := newFakeELB(t, f)
			meta, gets := fakeIMDS(t, "i-0123456789abcdef0")
			cfg := tt.cfg
			if cfg.TargetGroupARN == "" {
				cfg.TargetGroupARN = tgARN
			}
			cfg.Poll = 10 * time.Millisecond
			e, err := NewELBv2(cfg, api, meta)
			if err != nil {
				t.Fatal(err)
			}
			check := func(step string, err error, want string) {
				t.Helper()
				if want == "" && err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				if want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
					t.Fatalf("%s = %v, want an error containing %q", step, err, want)
				}
			}
			check("Drain", e.Drain(context.Background()), tt.wantDrain)
			check("Restore", e.Restore(context.Background()), tt.wantRestore)
			if *gets != 1 {
				t.Errorf("IMDS instance-id read %d times, want once", *gets)
			}
			if tt.wantCalls != nil && strings.Join(f.calls, "\n") != strings.Join(tt.wantCalls, "\n") {
				t.Errorf("ELB calls:\n got %q\nwant %q", f.calls, tt.wantCalls)
			}
		})
	}
}

func TestELBv2InstanceIDErrors(t *testing.T) {
	meta, _ := fakeIMDS(t, "not-an-instance")
	f := fakeELB{}
	e, err := NewELBv2(ELBv2Config{TargetGroupARN: tgARN}, newFakeELB(t, &f), meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Drain(context.Background()); err == nil || !strings.Contains(err.Error(), `"not-an-instance" is not an instance id`) {
		t.Fatalf("Drain = %v", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("ELB called without an instance id: %q", f.calls)
	}
	for _, tt := range []struct {
		name string
		cfg  ELBv2Config
		meta MetadataAPI
	}{
		{"not an ARN", ELBv2Config{TargetGroupARN: "hello"}, meta},
		{"no id source", ELBv2Config{TargetGroupARN: tgARN}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewELBv2(tt.cfg, nil, tt.meta); err == nil {
				t.Fatal("NewELBv2 succeeded")
			}
		})
	}
	if _, err := NewELBv2(ELBv2Config{TargetGroupARN: tgARN, InstanceID: "i-1"}, nil, nil); err != nil {
		t.Fatalf("NewELBv2 with a fixed instance id: %v", err)
	}
}
