// Package redislock is the puller's rolling lock: a counting semaphore in Redis
// that lets at most Cap hosts of one app and environment deploy at a time.
//
// The holders of a semaphore are a sorted set (host id -> lease expiry in Redis
// server milliseconds) at <prefix><app>:<env>:slots, with each holder's token in
// the hash <prefix><app>:<env>:tokens. One Lua script removes expired holders,
// applies the cap and admits, reading the clock with Redis TIME only. With
// SmallestCap, the cap applied is the smallest view of it among the hosts
// taking part (two sorted sets, <prefix><app>:<env>:viewcaps scored by cap and
// <prefix><app>:<env>:viewexpiry scored by when the view lapses). Admissions
// pause for one TTL when the slot set was lost (<prefix><app>:<env>:guard
// missing) or when another Redis serves it than the one that last wrote it
// (<prefix><app>:<env>:server, the run_id and replication id, changed: a
// restart from an older snapshot, a failover to a lagging replica). A host
// waiting in Acquire is queued in
// <prefix><app>:<env>:waiters; a release wakes the first of them still
// listening on its own channel, <prefix><app>:<env>:wake:<host>. A lease is
// renewed in the background; its Context is cancelled as soon as the lease is
// lost or can no longer be known to be valid, and Alive reports the same thing
// for a check right before a destructive step. Release compares the token, so a
// host can never release a slot that expired and went to someone else.
//
// AUTH, TLS, database and timeouts are the go-redis client's business: build the
// client with redis.Options (Password, Username, TLSConfig) and pass it to New.
//
// This package writes only the keys above (docs/redis.md); the cap a lease was
// granted under is the caller's to record (Lease.Cap).
package redislock

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/puller"
)

var (
	_ puller.Locker = (*Semaphore)(nil)
	_ puller.Lease  = (*Lease)(nil)
)

// Sentinels, returned as the cause of a lease's Context (context.Cause).
var (
	// ErrLost: Redis no longer holds this lease's token (it expired and was
	// removed, or the host re-acquired with a new lease, or Redis lost its data).
	ErrLost = errors.New("redislock: lease lost")
	// ErrExpired: the lease could not be renewed before it ran out.
	ErrExpired = errors.New("redislock: lease expired before it could be renewed")
	// ErrReleased: Release was called.
	ErrReleased = errors.New("redislock: lease released")
)

// BusyError is returned by TryAcquire when the semaphore admits nobody now.
type BusyError struct {
	Key     string   // "{app}:{env}"
	Holders []string // hosts holding a slot, when full
	Cap     int      // the cap applied (the smaller of the request's and the recorded one)
	// Paused is set when admissions are paused after the slot set was lost or
	// the Redis serving it changed (see Options.TTL); it is how long the pause
	// still lasts.
	Paused time.Duration
}

func (e *BusyError) Error() string {
	if e.Paused > 0 {
		return fmt.Sprintf("redislock: %s: admissions paused for %s after the slot set was lost or the Redis serving it changed", e.Key, e.Paused)
	}
	return fmt.Sprintf("redislock: %s: all %d slots held (%s)", e.Key, e.Cap, strings.Join(e.Holders, ", "))
}

// Options configure a Semaphore. Zero fields take the defaults in DefaultOptions.
type Options struct {
	// Prefix of every key. Default "aptfleet:".
	Prefix string
	// TTL of a lease: a holder that stops renewing loses its slot this long after
	// its last renewal. It is also how long admissions pause when the slot set is
	// found missing (Redis restarted without its data) or served by another
	// Redis than the one that wrote it last (a restart from an older snapshot,
	// a replica promoted), so that no holder that still believes in a lost
	// lease overlaps a new one. Default 30s.
	TTL time.Duration
	// RenewEvery is how often a held lease is renewed. Default TTL/3.
	RenewEvery time.Duration
	// PollEvery is how often Acquire retries while the semaphore is full (with
	// +-20% jitter); a release wakes one waiter at once through pub/sub.
	// Default 1s.
	PollEvery time.Duration
	// Logger for lease loss and Redis trouble. Default slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{Prefix: "aptfleet:", TTL: 30 * time.Second, RenewEvery: 10 * time.Second, PollEvery: time.Second}
}

// Request names the slot wanted: the puller's lock request.
type Request = puller.LockRequest

// Semaphore is a counting semaphore per Request.Key.
type Semaphore struct {
	rdb  redis.UniversalClient
	opts Options
	log  *slog.Logger
}

// New returns a Semaphore over rdb.
func New(rdb redis.UniversalClient, opts Options) *Semaphore {
	d := DefaultOptions()
	if opts.Prefix == "" {
		opts.Prefix = d.Prefix
	}
	if opts.TTL <= 0 {
		opts.TTL = d.TTL
	}
	if opts.RenewEvery <= 0 || opts.RenewEvery >= opts.TTL {
		opts.RenewEvery = opts.TTL / 3
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = d.PollEvery
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Semaphore{rdb: rdb, opts: opts, log: log}
}

// Options returns the options in effect (defaults filled in).
func (s *Semaphore) Options() Options { return s.opts }

// keys are a semaphore's keys: the holders (host -> lease expiry), their
// tokens, the guard against a lost slot set, and the queue of waiters (host ->
// when it was queued); wake is the prefix of each waiter's channel.
func (s *Semaphore) keys(key string) (slots, tokens, guard, waiters, wake string) {
	base := s.opts.Prefix + key
	return base + ":slots", base + ":tokens", base + ":guard", base + ":waiters", base + ":wake:"
}

// serverKey holds the identity of the Redis that last wrote key's slot set.
func (s *Semaphore) serverKey(key string) string { return s.opts.Prefix + key + ":server" }

// viewKeys are the sorted sets of the hosts' views of the cap: host -> cap,
// and host -> when the view lapses (server ms).
func (s *Semaphore) viewKeys(key string) []string {
	base := s.opts.Prefix + key
	return []string{base + ":viewcaps", base + ":viewexpiry"}
}

// viewTTL is how long a host's view of the cap counts without a refresh; a
// waiter refreshes it at every attempt, a holder at every renewal.
func (s *Semaphore) viewTTL() time.Duration { return max(s.opts.TTL, 3*s.opts.PollEvery) }

// serverCheck is the Lua function both acquireScript and armScript start
// with: serverCheck(server key, guard key, now ms, ttl ms) returns the guard's
// pause end (nil when the guard is missing). The server key holds the
// identity (run_id and replication id) of the Redis that last wrote the slot
// set. A different identity means the slot set may have come back with only
// part of its past: a restart from an older snapshot, or an async replica
// promoted while it lagged. Holders admitted since that past are unknown to
// this server, so admissions pause for one TTL, the longest such a holder
// can still believe in its lease, as they do when the guard is missing. A
// missing server key (first use) starts no pause by itself: a slot set lost
// whole has lost its guard too.
const serverCheck = `
local function serverCheck(server, guard, now, ttl)
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') or '?'
  local repl = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or '?'
  local id = run .. ':' .. repl
  local seen = redis.call('GET', server)
  local until_ms = tonumber(redis.call('GET', guard))
  if seen ~= id then
    redis.call('SET', server, id)
    if seen and (not until_ms or until_ms < now + ttl) then
      until_ms = now + ttl
      redis.call('SET', guard, until_ms)
    end
  end
  return until_ms
end
`

// acquireScript: KEYS slots, tokens, guard, waiters, server[, viewcaps,
// viewexpiry]; ARGV host, token, ttl ms, cap, view ttl ms, wait. Returns {1,
// cap} admitted, {0, cap, holders...} full ({0, cap} and the host queued as a
// waiter when wait is "1"), {-1, cap, pause ms} paused.
//
// The views cost O(log n) per call: lapsed ones are found by their expiry and
// the smallest live one is the first of viewcaps.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
if KEYS[6] then
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now)
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now)
    for _, h in ipairs(lapsed) do redis.call('ZREM', KEYS[6], h) end
  end
  redis.call('ZADD', KEYS[6], cap, ARGV[1])
  redis.call('ZADD', KEYS[7], now + tonumber(ARGV[5]), ARGV[1])
  local low = tonumber(redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')[2])
  if low < cap then cap = low end
end
` + serverCheck + `
local until_ms = serverCheck(KEYS[5], KEYS[3], now, ttl)
if not until_ms then
  until_ms = now + ttl
  redis.call('SET', KEYS[3], until_ms)
end
if until_ms > now then
  return {-1, cap, until_ms - now}
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, h in ipairs(expired) do redis.call('HDEL', KEYS[2], h) end
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= cap then
    if ARGV[6] == '1' then
      redis.call('ZADD', KEYS[4], 'NX', now, ARGV[1])
      return {0, cap}
    end
    local out = {0, cap}
    for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do table.insert(out, h) end
    return out
  end
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[1])
return {1, cap}
`)

// armScript: KEYS guard, server; ARGV ttl ms. Sets a missing guard, and
// with it the pause of one TTL, as an acquisition would, and pauses as it
// would when the Redis serving the slot set changed; returns the pause left
// in ms (0 when none) and the epoch: the server's identity and the guard's
// value, which change together with nothing else than a lost slot set or
// another server.
var armScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
` + serverCheck + `
local until_ms = serverCheck(KEYS[2], KEYS[1], now, tonumber(ARGV[1]))
if not until_ms then
  until_ms = now + tonumber(ARGV[1])
  redis.call('SET', KEYS[1], until_ms)
end
local epoch = (redis.call('GET', KEYS[2]) or '?') .. '/' .. redis.call('GET', KEYS[1])
if until_ms > now then return {until_ms - now, epoch} end
return {0, epoch}
`)

// renewScript: KEYS slots, tokens[, viewcaps, viewexpiry]; ARGV host, token,
// ttl ms[, cap, view ttl ms]. 1 renewed, 0 lost.
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
local exp = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not exp or exp <= now then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
if KEYS[3] then
  redis.call('ZADD', KEYS[3], tonumber(ARGV[4]), ARGV[1])
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[5]), ARGV[1])
end
return 1
`)

// releaseScript: KEYS slots, tokens, waiters[, viewcaps, viewexpiry]; ARGV
// host, token, wake channel prefix. 1 released, 0 lost. A slot freed wakes
// one waiter: the first queued that still listens (PUBLISH counts the
// receivers; waiters that gave up are dropped from the queue).
var releaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
local exp = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
redis.call('HDEL', KEYS[2], ARGV[1])
if KEYS[4] then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
end
redis.call('ZREM', KEYS[1], ARGV[1])
while true do
  local w = redis.call('ZPOPMIN', KEYS[3])
  if #w == 0 then break end
  if w[1] ~= ARGV[1] and redis.call('PUBLISH', ARGV[3] .. w[1], ARGV[1]) > 0 then break end
end
if not exp or exp <= now then return 0 end
return 1
`)

// holdersScript: KEYS slots. The hosts whose lease has not expired, by server time.
var holdersScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
`)

// TryAcquire asks once for a slot. It returns a *BusyError when none is free.
// The lease is renewed in the background until Release or loss; its Context is
// independent of ctx (which bounds this call only).
func (s *Semaphore) TryAcquire(ctx context.Context, req Request) (*Lease, error) {
	return s.tryAcquire(ctx, req, nil)
}

// tryAcquire is TryAcquire; a lease granted keeps refreshing its view of the
// cap from reqFn (when not nil) at every renewal. With reqFn (the caller is
// Acquire, listening on its wake channel) a busy answer queues the host as a
// waiter and carries no holders.
func (s *Semaphore) tryAcquire(ctx context.Context, req Request, reqFn func() Request) (*Lease, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	slots, tokens, guard, waiters, _ := s.keys(req.Key)
	keys := []string{slots, tokens, guard, waiters, s.serverKey(req.Key)}
	if req.SmallestCap {
		keys = append(keys, s.viewKeys(req.Key)...)
	}
	wait := "0"
	if reqFn != nil {
		wait = "1"
	}
	token := newToken()
	sent := time.Now()
	res, err := acquireScript.Run(ctx, s.rdb, keys, req.Host, token, s.opts.TTL.Milliseconds(), req.Cap, s.viewTTL().Milliseconds(), wait).Slice()
	if err != nil {
		return nil, fmt.Errorf("acquire %s for %s: %w", req.Key, req.Host, err)
	}
	if len(res) < 2 {
		return nil, fmt.Errorf("acquire %s for %s: unexpected reply %v", req.Key, req.Host, res)
	}
	status, _ := res[0].(int64)
	capApplied, _ := res[1].(int64)
	switch status {
	case 1:
		return s.newLease(req, reqFn, token, int(capApplied), sent), nil
	case -1:
		ms, _ := res[2].(int64)
		return nil, &BusyError{Key: req.Key, Cap: int(capApplied), Paused: time.Duration(ms) * time.Millisecond}
	default:
		be := &BusyError{Key: req.Key, Cap: int(capApplied)}
		for _, h := range res[2:] {
			if hs, ok := h.(string); ok {
				be.Holders = append(be.Holders, hs)
			}
		}
		return nil, be
	}
}

// Acquire retries TryAcquire until a slot is granted or ctx is done, calling req
// before every attempt (so the cap follows the live membership). It waits
// PollEvery between attempts, or less when a release wakes it: each release
// wakes one waiter, the one queued longest that is still waiting. Redis errors are
// logged once and retried; an invalid request is returned at once. The lease
// granted calls req again at every renewal to refresh this host's view of the
// cap (only Cap is read then), so req must be safe to call from another
// goroutine.
func (s *Semaphore) Acquire(ctx context.Context, req func() Request) (puller.Lease, error) {
	var wake <-chan *redis.Message
	var failing bool
	for attempt := 0; ; attempt++ {
		r := req()
		if err := r.Validate(); err != nil {
			return nil, err
		}
		if wake == nil {
			_, _, _, _, channel := s.keys(r.Key)
			ps := s.rdb.Subscribe(ctx, channel+r.Host)
			defer ps.Close()
			// Listen before the first attempt queues this host, so that a
			// release right after it finds the listener. Should Redis be
			// away, the subscription is made again in the background, and
			// polling goes on meanwhile.
			_, _ = ps.ReceiveTimeout(ctx, s.opts.PollEvery)
			wake = ps.Channel()
		}
		l, err := s.tryAcquire(ctx, r, req)
		if err == nil {
			if failing {
				s.log.Info("redislock: redis reachable again", "key", r.Key)
			}
			return l, nil
		}
		wait := jitter(s.opts.PollEvery)
		var busy *BusyError
		switch {
		case errors.As(err, &busy):
			if busy.Paused > 0 && busy.Paused < wait {
				wait = busy.Paused + time.Millisecond
			}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			if !failing {
				s.log.Warn("redislock: acquire failed, retrying", "key", r.Key, "err", err)
				failing = true
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Arm makes sure key's guard exists, setting it when missing (first use, or
// Redis lost its data) and starting then the pause of one TTL that the next
// acquisition would otherwise start. An agent arms at every idle check, so a
// new fleet's first rollout and a Redis that lost its data while the fleet was
// idle do not wait a TTL when a rollout comes. It is as safe as the pause at
// acquisition: the pause runs one TTL from the first moment anyone saw the
// guard missing, which is after the data was lost. Arm returns the pause
// left and the epoch of key's data (puller.Guard): the identity of the Redis
// serving it and the guard's value, which change when, and only when, the
// slot set was found lost or served by another Redis.
func (s *Semaphore) Arm(ctx context.Context, key string) (puller.Guard, error) {
	_, _, guard, _, _ := s.keys(key)
	res, err := armScript.Run(ctx, s.rdb, []string{guard, s.serverKey(key)}, s.opts.TTL.Milliseconds()).Slice()
	if err != nil {
		return puller.Guard{}, fmt.Errorf("arm %s: %w", key, err)
	}
	var ms int64
	var epoch string
	if len(res) == 2 {
		ms, _ = res[0].(int64)
		epoch, _ = res[1].(string)
	}
	if epoch == "" {
		return puller.Guard{}, fmt.Errorf("arm %s: unexpected reply %v", key, res)
	}
	return puller.Guard{Pause: time.Duration(ms) * time.Millisecond, Epoch: epoch}, nil
}

// Holders returns the hosts holding an unexpired slot of key, by Redis time.
func (s *Semaphore) Holders(ctx context.Context, key string) ([]string, error) {
	slots, _, _, _, _ := s.keys(key)
	hs, err := holdersScript.Run(ctx, s.rdb, []string{slots}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("holders of %s: %w", key, err)
	}
	return hs, nil
}

func jitter(d time.Duration) time.Duration {
	return d*4/5 + rand.N(d*2/5+1)
}

func newToken() string {
	var b [16]byte
	if _, err := cryptorand(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

var cryptorand = crand.Read

// Lease is one held slot.
type Lease struct {
	s      *Semaphore
	req    Request
	reqFn  func() Request // nil: the view of the cap stays req.Cap
	token  string
	cap    int
	margin time.Duration

	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	deadline time.Time // local bound on validity (monotonic clock), margin included
	timer    *time.Timer
	released bool
}

// newLease starts the renewal of a lease granted by a script sent at sent. The
// server set the expiry to its time + TTL no earlier than sent, so locally the
// lease is known valid until sent + TTL; a margin of TTL/10 covers clock rate
// differences and the time between a check and the step it guards.
func (s *Semaphore) newLease(req Request, reqFn func() Request, token string, capApplied int, sent time.Time) *Lease {
	ctx, cancel := context.WithCancelCause(context.Background())
	l := &Lease{
		s: s, req: req, reqFn: reqFn, token: token, cap: capApplied, margin: s.opts.TTL / 10,
		ctx: ctx, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}),
	}
	l.deadline = sent.Add(s.opts.TTL - l.margin)
	l.mu.Lock()
	l.timer = time.AfterFunc(time.Until(l.deadline), l.checkExpiry)
	l.mu.Unlock()
	go l.renew()
	return l
}

// checkExpiry cancels the lease when its deadline has passed, or re-arms itself
// for the deadline a renewal moved.
func (l *Lease) checkExpiry() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		return
	}
	if left := time.Until(l.deadline); left > 0 {
		l.timer.Reset(left)
		return
	}
	l.cancel(ErrExpired)
	l.s.log.Warn("redislock: lease expired before it could be renewed", "key", l.req.Key, "host", l.req.Host)
}

func (l *Lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.s.opts.RenewEvery)
	defer t.Stop()
	slots, tokens, _, _, _ := l.s.keys(l.req.Key)
	var failing bool
	for {
		select {
		case <-l.stop:
			return
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		deadline := l.deadline
		l.mu.Unlock()
		keys, args := []string{slots, tokens}, []any{l.req.Host, l.token, l.s.opts.TTL.Milliseconds()}
		if l.req.SmallestCap {
			keys = append(keys, l.s.viewKeys(l.req.Key)...)
			args = append(args, l.viewOfCap(), l.s.viewTTL().Milliseconds())
		}
		sent := time.Now()
		ctx, cancel := context.WithDeadline(l.ctx, deadline)
		n, err := renewScript.Run(ctx, l.s.rdb, keys, args...).Int()
		cancel()
		switch {
		case err == nil && n == 1:
			l.mu.Lock()
			if l.ctx.Err() == nil {
				l.deadline = sent.Add(l.s.opts.TTL - l.margin)
			}
			l.mu.Unlock()
			if failing {
				l.s.log.Info("redislock: lease renewed again", "key", l.req.Key, "host", l.req.Host)
				failing = false
			}
		case err == nil:
			l.cancel(ErrLost)
			l.s.log.Warn("redislock: lease lost", "key", l.req.Key, "host", l.req.Host)
			return
		default:
			if !failing && l.ctx.Err() == nil {
				l.s.log.Warn("redislock: renew failed, retrying until the lease runs out", "key", l.req.Key, "host", l.req.Host, "err", err)
				failing = true
			}
		}
	}
}

// viewOfCap is this holder's current view of the cap.
func (l *Lease) viewOfCap() int {
	if l.reqFn != nil {
		if c := l.reqFn().Cap; c >= 1 {
			return c
		}
	}
	return l.req.Cap
}

// Context is cancelled when the lease is lost, runs out without renewal, or is
// released; context.Cause tells which (ErrLost, ErrExpired, ErrReleased). Run
// the deploy under it.
func (l *Lease) Context() context.Context { return l.ctx }

// Alive reports whether the lease is known to be valid now. Check it right
// before every destructive step.
func (l *Lease) Alive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx.Err() == nil && time.Now().Before(l.deadline)
}

// Cap is the cap that was applied when the lease was granted.
func (l *Lease) Cap() int { return l.cap }

// Host is the host id holding the lease.
func (l *Lease) Host() string { return l.req.Host }

// Release stops renewal and frees the slot if this lease still holds it.
// Releasing a lease that was already lost is not an error; it is logged.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	l.timer.Stop()
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	lostBefore := context.Cause(l.ctx)
	l.cancel(ErrReleased)
	slots, tokens, _, waiters, channel := l.s.keys(l.req.Key)
	keys := []string{slots, tokens, waiters}
	if l.req.SmallestCap {
		keys = append(keys, l.s.viewKeys(l.req.Key)...)
	}
	n, err := releaseScript.Run(ctx, l.s.rdb, keys, l.req.Host, l.token, channel).Int()
	if err != nil {
		return fmt.Errorf("release %s for %s: %w", l.req.Key, l.req.Host, err)
	}
	if n == 0 {
		l.s.log.Warn("redislock: released a lease that was already lost", "key", l.req.Key, "host", l.req.Host, "cause", lostBefore)
	}
	return nil
}
