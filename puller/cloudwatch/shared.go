package cloudwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/puller"
)

// SharedOptions configure a Shared reader.
type SharedOptions struct {
	// Prefix of the key. Default "aptfleet:".
	Prefix string
	// App and Env name the key, {prefix}{app}:{env}:alarms. Required.
	App, Env string
	// Host is this host's id, recorded in the claim. Required.
	Host string
	// Every is the poll interval: an answer younger than it is served from
	// Redis. Default 30s.
	Every time.Duration
	// ClaimFor is how long a claim keeps others from polling (then another
	// host may). Default 10s.
	ClaimFor time.Duration
	// Wait is how long a host with no answer at all waits for the claimant's.
	// Default 200ms between reads, up to ClaimFor.
	Wait time.Duration
}

// Shared serves alarm states from Redis, polling CloudWatch (through Reader)
// at most once per Every for the whole fleet of an app/env.
type Shared struct {
	rdb  redis.UniversalClient
	opts SharedOptions
	key  string
	src  puller.Alarms
}

var _ puller.Alarms = (*Shared)(nil)

// NewShared returns a Shared reader of src through rdb.
func NewShared(rdb redis.UniversalClient, src puller.Alarms, opts SharedOptions) (*Shared, error) {
	if opts.App == "" || opts.Env == "" || opts.Host == "" {
		return nil, errors.New("cloudwatch: shared alarms need an app, an env and a host")
	}
	if opts.Prefix == "" {
		opts.Prefix = "aptfleet:"
	}
	if opts.Every <= 0 {
		opts.Every = 30 * time.Second
	}
	if opts.ClaimFor <= 0 {
		opts.ClaimFor = 10 * time.Second
	}
	if opts.Wait <= 0 {
		opts.Wait = 200 * time.Millisecond
	}
	return &Shared{rdb: rdb, opts: opts, key: Key(opts.Prefix, opts.App, opts.Env), src: src}, nil
}

// Key is the Redis key of an app/env's shared alarm states.
func Key(prefix, app, env string) string { return prefix + app + ":" + env + ":alarms" }

// read returns the cached answer, or claims the next poll. The hash holds
// names (the sorted list polled, "\n"-joined), at (ms, Redis time of the
// answer), body (JSON alarms), err (the poll's error), claim and
// claim_until (ms). An answer for another list of names is stale.
var read = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'names', 'at', 'body', 'err', 'claim', 'claim_until')
local at = tonumber(v[2] or '0') or 0
local fresh = v[1] == ARGV[1] and now - at < tonumber(ARGV[2])
if not fresh then
  local claimed = (tonumber(v[6] or '0') or 0) > now and v[5] ~= ARGV[3]
  if not claimed then
    redis.call('HSET', KEYS[1], 'claim', ARGV[3], 'claim_until', now + tonumber(ARGV[4]))
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
    return {1, v[1] or '', v[3] or '', v[4] or '', now - at}
  end
end
return {0, v[1] or '', v[3] or '', v[4] or '', now - at}
`)

// write stores a poll's answer if this host still holds the claim.
var write = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'names', ARGV[2], 'at', now, 'body', ARGV[3], 'err', ARGV[4])
redis.call('HDEL', KEYS[1], 'claim', 'claim_until')
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
return 1
`)

// Alarms returns the states of names: the fleet's cached answer when it is
// younger than Every, else this host polls CloudWatch (one call) and shares
// the answer. The error of the poll that made the answer is returned with
// it, to every host, so a CloudWatch outage is seen fleet-wide without
// every host calling.
func (s *Shared) Alarms(ctx context.Context, names []string) ([]puller.Alarm, error) {
	if len(names) == 0 {
		return nil, nil
	}
	sorted := slices.Sorted(slices.Values(names))
	list := strings.Join(sorted, "\n")
	ttl := (10 * s.opts.Every).Milliseconds()
	deadline := time.Now().Add(s.opts.ClaimFor)
	for {
		res, err := read.Run(ctx, s.rdb, []string{s.key}, list, s.opts.Every.Milliseconds(), s.opts.Host, s.opts.ClaimFor.Milliseconds(), ttl).Slice()
		if err != nil {
			return nil, fmt.Errorf("shared alarms %s: %w", s.key, err)
		}
		claimed := res[0].(int64) == 1
		cachedNames, body, pollErr := res[1].(string), res[2].(string), res[3].(string)
		if claimed {
			alarms, err := s.src.Alarms(ctx, sorted)
			b, _ := json.Marshal(alarms)
			var msg string
			if err != nil {
				msg = err.Error()
			}
			if werr := write.Run(context.WithoutCancel(ctx), s.rdb, []string{s.key}, s.opts.Host, list, b, msg, ttl).Err(); werr != nil && err == nil {
				err = fmt.Errorf("share alarms %s: %w", s.key, werr)
			}
			return alarms, err
		}
		if cachedNames == list {
			// Fresh, or stale while another host polls: serve it.
			var alarms []puller.Alarm
			if body != "" && body != "null" {
				if err := json.Unmarshal([]byte(body), &alarms); err != nil {
					return nil, fmt.Errorf("shared alarms %s: %w", s.key, err)
				}
			}
			if pollErr != "" {
				return alarms, fmt.Errorf("alarms polled by another host: %s", pollErr)
			}
			return alarms, nil
		}
		// No answer for these names yet and another host is polling.
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("shared alarms %s: no answer from the polling host within %s", s.key, s.opts.ClaimFor)
		}
		t := time.NewTimer(s.opts.Wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
