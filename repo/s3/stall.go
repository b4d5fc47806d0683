package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// StallError is a request that made no progress for the store's Timeout:
// the server accepted no byte of it and sent none back.
type StallError struct {
	Endpoint string // the server's base URL, or "AWS S3"
	Timeout  time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("no answer from %s for %s (the server may be hung or unreachable)", e.Endpoint, e.Timeout)
}

// sentKey marks a request's context with an *atomic.Bool that the stall
// client sets once the request's whole body has been handed to the
// connection: from then on the server may apply the request.
type sentKey struct{}

// stallClient sends requests through next and cancels one when no byte of
// it has moved for timeout.
type stallClient struct {
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
	timeout  time.Duration
	endpoint string
}

// newStallClient wraps next (nil: the SDK's default client) so that a
// request without progress for timeout fails with a *StallError. The
// transport waits for "100 Continue" as long as that, so a request that
// asks for it sends no body to a hung server.
func newStallClient(next aws.HTTPClient, timeout time.Duration, endpoint string) *stallClient {
	if endpoint == "" {
		endpoint = "AWS S3"
	}
	switch c := next.(type) {
	case nil:
		next = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.ExpectContinueTimeout = 2 * timeout
		})
	case *awshttp.BuildableClient:
		next = c.WithTransportOptions(func(tr *http.Transport) { tr.ExpectContinueTimeout = 2 * timeout })
	case *http.Client:
		if tr, ok := c.Transport.(*http.Transport); ok {
			tr = tr.Clone()
			tr.ExpectContinueTimeout = 2 * timeout
			cc := *c
			cc.Transport = tr
			next = &cc
		} else if c.Transport == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.ExpectContinueTimeout = 2 * timeout
			cc := *c
			cc.Transport = tr
			next = &cc
		}
	}
	return &stallClient{next: next, timeout: timeout, endpoint: endpoint}
}

// Do implements the SDK's HTTPClient.
func (c *stallClient) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	stall := &StallError{Endpoint: c.endpoint, Timeout: c.timeout}
	timer := time.AfterFunc(c.timeout, func() { cancel(stall) })
	kick := func() { timer.Reset(c.timeout) }
	sent, _ := req.Context().Value(sentKey{}).(*atomic.Bool)
	req = req.WithContext(ctx)
	if req.ProtoMajor == 0 {
		// The SDK leaves these unset; net/http waits for "100 Continue"
		// only on a request that says HTTP/1.1, which is what it sends.
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	}
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &watchBody{rc: req.Body, kick: kick, eof: sent, left: req.ContentLength}
	} else if sent != nil {
		sent.Store(true)
	}
	resp, err := c.next.Do(req)
	if err != nil {
		timer.Stop()
		cancel(nil)
		if errors.Is(context.Cause(ctx), stall) {
			return nil, stall
		}
		return nil, err
	}
	kick()
	resp.Body = &watchBody{rc: resp.Body, kick: kick, done: func() { timer.Stop(); cancel(nil) }, stalled: func() error {
		if errors.Is(context.Cause(ctx), stall) {
			return stall
		}
		return nil
	}}
	return resp, nil
}

// watchBody counts each read as progress.
type watchBody struct {
	rc      io.ReadCloser
	kick    func()
	eof     *atomic.Bool // set at the end of a request body
	left    int64        // bytes of a request body not read yet, when known
	done    func()       // called on Close of a response body
	stalled func() error
}

func (b *watchBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.kick()
		b.left -= int64(n)
	}
	if b.eof != nil && (err == io.EOF || n > 0 && b.left == 0) {
		b.eof.Store(true)
	}
	if err != nil && err != io.EOF && b.stalled != nil {
		if s := b.stalled(); s != nil {
			return n, s
		}
	}
	return n, err
}

func (b *watchBody) Close() error {
	err := b.rc.Close()
	if b.done != nil {
		b.done()
	}
	return err
}

// noRetryOnStall keeps the SDK from retrying a stalled request: a server
// that did not answer for the timeout is not expected to answer the next
// try sooner, and the command's deadline is better spent reporting it.
type noRetryOnStall struct{ aws.RetryerV2 }

func (r noRetryOnStall) IsErrorRetryable(err error) bool {
	var s *StallError
	if errors.As(err, &s) {
		return false
	}
	return r.RetryerV2.IsErrorRetryable(err)
}
