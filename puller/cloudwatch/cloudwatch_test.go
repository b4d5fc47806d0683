package cloudwatch

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/awsstub"
	"github.com/aptfleet/aptfleet/puller"
)

const region, keyID, secret = "eu-west-1", "AKIDTEST", "s3cr3t"

// reader returns a Reader on the real SDK client pointed at the stand-in,
// signing with secret and without retries (so each call is one request).
func reader(cw *awsstub.CloudWatch, secret string) *Reader {
	cfg := aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, "")}
	return NewReader(cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.BaseEndpoint = aws.String(cw.URL)
		o.RetryMaxAttempts = 1
	}))
}

func TestReader(t *testing.T) {
	cw := awsstub.NewCloudWatch(t, region, keyID, secret)
	cw.SetAlarm("hello-5xx-high", "OK", "Threshold Crossed: 0 datapoints", false)
	cw.SetAlarm("hello-health", "ALARM", "Threshold Crossed: 1 of 1 children in ALARM", true)
	ctx := context.Background()
	got, err := reader(cw, secret).Alarms(ctx, []string{"hello-5xx-high", "hello-health", "hello-gone"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]puller.Alarm{}
	for _, a := range got {
		byName[a.Name] = a
	}
	if len(got) != 2 || byName["hello-5xx-high"].State != "OK" || byName["hello-health"].State != puller.AlarmStateAlarm ||
		byName["hello-health"].Reason != "Threshold Crossed: 1 of 1 children in ALARM" || byName["hello-health"].Updated.IsZero() {
		t.Fatalf("alarms %+v: want the metric alarm OK and the composite one in ALARM with its reason, the unknown name left out", got)
	}
	if calls := cw.Calls(); len(calls) != 1 || len(calls[0]) != 3 {
		t.Fatalf("calls %v: want one call for the three names", calls)
	}
	t.Run("wrong secret", func(t *testing.T) {
		_, err := reader(cw, "wrong").Alarms(ctx, []string{"hello-5xx-high"})
		if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
			t.Fatalf("Alarms with a wrong secret = %v, want SignatureDoesNotMatch", err)
		}
		if r := cw.Rejected(); len(r) != 1 || !strings.Contains(r[0], "signature mismatch") {
			t.Fatalf("stand-in rejections %v", r)
		}
	})
}

func sharedFleet(t *testing.T, hosts int, every time.Duration) (*awsstub.CloudWatch, []*Shared, *redis.Client) {
	t.Helper()
	cw := awsstub.NewCloudWatch(t, region, keyID, secret)
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	var fleet []*Shared
	for i := range hosts {
		s, err := NewShared(rdb, reader(cw, secret), SharedOptions{App: "hello", Env: "production", Host: "i-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Every: every})
		if err != nil {
			t.Fatal(err)
		}
		fleet = append(fleet, s)
	}
	return cw, fleet, rdb
}

// A fleet of hosts asking all the time makes one DescribeAlarms call per
// interval between them, and a state change reaches every host.
func TestSharedOneCallPerInterval(t *testing.T) {
	const hosts, every = 100, 250 * time.Millisecond
	cw, fleet, rdb := sharedFleet(t, hosts, every)
	names := []string{"hello-p99-latency", "hello-5xx-high"}
	cw.SetAlarm("hello-5xx-high", "OK", "", false)
	cw.SetAlarm("hello-p99-latency", "OK", "", false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var asks, errs atomic.Int64
	var inAlarm sync.Map // host -> true once it saw hello-5xx-high in ALARM
	var wg sync.WaitGroup
	start := time.Now()
	for _, s := range fleet {
		wg.Go(func() {
			for ctx.Err() == nil {
				got, err := s.Alarms(ctx, names)
				if ctx.Err() != nil {
					return
				}
				asks.Add(1)
				if err != nil {
					errs.Add(1)
					t.Errorf("%s: %v", s.opts.Host, err)
				}
				for _, a := range got {
					if a.Name == "hello-5xx-high" && a.State == puller.AlarmStateAlarm {
						inAlarm.Store(s.opts.Host, true)
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	time.Sleep(4 * every)
	cw.SetAlarm("hello-5xx-high", "ALARM", "Threshold Crossed", false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0
		inAlarm.Range(func(any, any) bool { n++; return true })
		if n == hosts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d hosts saw the alarm", n, hosts)
		}
		time.Sleep(every / 5)
	}
	cancel()
	wg.Wait()
	elapsed := time.Since(start)
	calls := cw.Calls()
	bound := int(elapsed/every) + 2
	t.Logf("%d hosts asked %d times in %s; %d DescribeAlarms calls (interval %s)", hosts, asks.Load(), elapsed.Round(time.Millisecond), len(calls), every)
	if len(calls) < 2 || len(calls) > bound {
		t.Fatalf("%d calls in %s at one per %s: want 2..%d", len(calls), elapsed, every, bound)
	}
	for _, c := range calls {
		if len(c) != 2 {
			t.Fatalf("call for %v: want both names in every call", c)
		}
	}
	if ttl := rdb.PTTL(context.Background(), Key("aptfleet:", "hello", "production")).Val(); ttl <= 0 {
		t.Errorf("key has no expiry (%s)", ttl)
	}
}

// A failed poll is shared too: the other hosts get its error without
// calling CloudWatch themselves, and the next interval polls again.
func TestSharedPollError(t *testing.T) {
	cw, fleet, _ := sharedFleet(t, 3, 300*time.Millisecond)
	cw.SetAlarm("hello-5xx-high", "OK", "", false)
	cw.FailNext(1)
	ctx := context.Background()
	names := []string{"hello-5xx-high"}
	if _, err := fleet[0].Alarms(ctx, names); err == nil || !strings.Contains(err.Error(), "InternalFailure") {
		t.Fatalf("claimant: %v, want the InternalFailure", err)
	}
	for _, s := range fleet[1:] {
		if _, err := s.Alarms(ctx, names); err == nil || !strings.Contains(err.Error(), "alarms polled by another host: cloudwatch DescribeAlarms") {
			t.Fatalf("%s: %v, want the shared poll error", s.opts.Host, err)
		}
	}
	if n := len(cw.Calls()) + len(cw.Rejected()); n != 1 {
		t.Fatalf("%d requests reached the stand-in, want 1", n)
	}
	time.Sleep(300 * time.Millisecond) // the next interval
	got, err := fleet[2].Alarms(ctx, names)
	if err != nil || len(got) != 1 || got[0].State != "OK" {
		t.Fatalf("after the interval: %+v, %v; want a fresh OK", got, err)
	}
}
