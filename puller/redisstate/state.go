// Package redisstate keeps the fleet's deploy state in Redis: which versions
// are broken, what each host runs, and how each rollout progresses.
//
// Keys (Prefix defaults to "aptfleet:"):
//
//	{prefix}{app}:{env}:broken             hash version -> JSON {reason, host, at}
//	{prefix}{app}:{env}:hosts              hash host -> JSON {version, target, state, reason, retry_at, at}
//	{prefix}{app}:{env}:rollout:{version}  hash total, done, failed, host_failed, cap, started, finished,
//	                                       release_failure:{host}
//
// This package is the only writer of these keys (docs/redis.md).
package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller"
)

// Host is what one host reports about one app.
type Host = puller.HostRecord

var _ puller.State = (*Store)(nil)

// Options configure a Store.
type Options struct {
	// Prefix of every key. Default "aptfleet:".
	Prefix string
	// Now is the clock used for "at" fields. Default time.Now.
	Now func() time.Time
	// ForgetAfter: ReadRaw drops host records whose "at" is older than this
	// (puller.Config.ForgetAfter). Default 0: records are kept.
	ForgetAfter time.Duration
}

// Store reads and writes the state.
type Store struct {
	rdb         redis.UniversalClient
	prefix      string
	now         func() time.Time
	forgetAfter time.Duration
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "aptfleet:"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{rdb: rdb, prefix: opts.Prefix, now: opts.Now, forgetAfter: opts.ForgetAfter}
}

func (s *Store) key(app, env, what string) string {
	return s.prefix + app + ":" + env + ":" + what
}

// rolloutKey is the full key of version's rollout hash.
func (s *Store) rolloutKey(app, env, version string) string {
	return s.key(app, env, "rollout:"+version)
}

// Broken returns every broken version of app/env.
func (s *Store) Broken(ctx context.Context, app, env string) (map[string]puller.Broken, error) {
	m, err := s.rdb.HGetAll(ctx, s.key(app, env, "broken")).Result()
	if err != nil {
		return nil, fmt.Errorf("read broken versions of %s/%s: %w", app, env, err)
	}
	out := make(map[string]puller.Broken, len(m))
	for v, raw := range m {
		var b puller.Broken
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			b = puller.Broken{Reason: raw} // written by hand: keep the text
		}
		out[v] = b
	}
	return out, nil
}

// IsBroken reports whether version is marked broken, with the mark.
func (s *Store) IsBroken(ctx context.Context, app, env, version string) (*puller.Broken, error) {
	raw, err := s.rdb.HGet(ctx, s.key(app, env, "broken"), version).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read broken mark of %s/%s %s: %w", app, env, version, err)
	}
	var b puller.Broken
	if err := json.Unmarshal([]byte(raw), &b); err != nil {
		b = puller.Broken{Reason: raw}
	}
	return &b, nil
}

// markBroken sets the mark unless one exists and ends the rollout.
var markBroken = redis.NewScript(`
local first = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSETNX', KEYS[2], 'finished', ARGV[3])
return first`)

// MarkBroken marks version broken for app/env (the first mark wins) and ends
// its rollout. It reports whether this call set the mark.
func (s *Store) MarkBroken(ctx context.Context, app, env, version string, b puller.Broken) (bool, error) {
	if b.At.IsZero() {
		b.At = s.now()
	}
	raw, _ := json.Marshal(b)
	n, err := markBroken.Run(ctx, s.rdb, []string{s.key(app, env, "broken"), s.rolloutKey(app, env, version)},
		version, raw, b.At.UTC().Format(time.RFC3339Nano)).Int()
	if err != nil {
		return false, fmt.Errorf("mark %s/%s %s broken: %w", app, env, version, err)
	}
	return n == 1, nil
}

// RestoreBroken puts back broken marks Redis lost (a host remembered them):
// each one with HSETNX, so a mark in force is kept as it is. Unlike
// MarkBroken it does not touch the version's rollout, which Redis lost too.
func (s *Store) RestoreBroken(ctx context.Context, app, env string, marks map[string]puller.Broken) error {
	if len(marks) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for v, b := range marks {
		raw, _ := json.Marshal(b)
		pipe.HSetNX(ctx, s.key(app, env, "broken"), v, raw)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("restore broken marks of %s/%s: %w", app, env, err)
	}
	return nil
}

// SetHost records host's version and state for app/env, stamped now.
func (s *Store) SetHost(ctx context.Context, app, env, host, version string, state puller.HostState) error {
	return s.RecordHost(ctx, app, env, host, Host{Version: version, State: state})
}

// RecordHost writes host's record for app/env, stamped now.
func (s *Store) RecordHost(ctx context.Context, app, env, host string, r puller.HostRecord) error {
	r.At = s.now().UTC()
	raw, _ := json.Marshal(r)
	if err := s.rdb.HSet(ctx, s.key(app, env, "hosts"), host, raw).Err(); err != nil {
		return fmt.Errorf("record host %s of %s/%s: %w", host, app, env, err)
	}
	return nil
}

// Host reads host's record for app/env, nil when it has none (or its record
// does not parse).
func (s *Store) Host(ctx context.Context, app, env, host string) (*puller.HostRecord, error) {
	raw, err := s.rdb.HGet(ctx, s.key(app, env, "hosts"), host).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read host %s of %s/%s: %w", host, app, env, err)
	}
	var r puller.HostRecord
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return nil, nil
	}
	return &r, nil
}

// Hosts returns every host recorded for app/env.
func (s *Store) Hosts(ctx context.Context, app, env string) (map[string]Host, error) {
	m, err := s.rdb.HGetAll(ctx, s.key(app, env, "hosts")).Result()
	if err != nil {
		return nil, fmt.Errorf("read hosts of %s/%s: %w", app, env, err)
	}
	out := make(map[string]Host, len(m))
	for h, raw := range m {
		var v Host
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			continue // not ours
		}
		out[h] = v
	}
	return out, nil
}

// startRollout: total = max(total, ARGV[1]); started set once.
var startRollout = redis.NewScript(`
local t = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if tonumber(ARGV[1]) > t then redis.call('HSET', KEYS[1], 'total', ARGV[1]) end
local first = redis.call('HSETNX', KEYS[1], 'started', ARGV[2])
redis.call('HSETNX', KEYS[1], 'done', 0)
redis.call('HSETNX', KEYS[1], 'failed', 0)
if first == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'kind', 'rollout_started', 'event', ARGV[3])
end
return 1`)

// StartRollout records that a host begins version with alive hosts in the
// app/env: total becomes the largest alive count seen, started is set once.
func (s *Store) StartRollout(ctx context.Context, app, env, version string, alive int) error {
	now := s.now().UTC()
	ev := event.New(event.RolloutStarted, app, env, version, "", now)
	ev.Total = alive
	raw, _ := json.Marshal(ev)
	err := startRollout.Run(ctx, s.rdb, []string{s.rolloutKey(app, env, version), s.key(app, env, "history")},
		alive, now.Format(time.RFC3339Nano), raw, HistoryLen).Err()
	if err != nil {
		return fmt.Errorf("start rollout of %s/%s %s: %w", app, env, version, err)
	}
	return nil
}

// finishHost counts a host's result and sets finished once every host
// counted (hosts that left after a host fault count no more).
var finishHost = redis.NewScript(`
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local t = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local d = tonumber(redis.call('HGET', KEYS[1], 'done') or '0')
local f = tonumber(redis.call('HGET', KEYS[1], 'failed') or '0')
local hf = tonumber(redis.call('HGET', KEYS[1], 'host_failed') or '0')
if (ARGV[1] == 'failed' and f > 0) or (t > 0 and d + f + hf >= t) then
  local set = redis.call('HSETNX', KEYS[1], 'finished', ARGV[2])
  if set == 1 and f == 0 then
    local ev = cjson.decode(ARGV[3])
    ev['total'] = t
    ev['done'] = d
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'kind', 'rollout_done', 'event', cjson.encode(ev))
  end
end
return 1`)

// releaseFailure records a host's release failure on a version once per host
// (field release_failure:HOST), counts it in failed, and when brokenAfter
// distinct hosts had one, marks the version broken (HSETNX: the first mark
// wins) and finishes the rollout. It returns {distinct hosts, 1 when this
// call set the mark}.
var releaseFailure = redis.NewScript(`
local new = redis.call('HSETNX', KEYS[1], 'release_failure:' .. ARGV[1], ARGV[2])
if new == 1 then redis.call('HINCRBY', KEYS[1], 'failed', 1) end
local n = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 16) == 'release_failure:' then n = n + 1 end
end
local marked = 0
if n >= tonumber(ARGV[3]) then
  marked = redis.call('HSETNX', KEYS[2], ARGV[4], ARGV[2])
  redis.call('HSETNX', KEYS[1], 'finished', ARGV[5])
end
return {n, marked}`)

// ReleaseFailure counts b.Host's release failure on version (once per host)
// and marks version broken with b once brokenAfter distinct hosts had one.
// It returns the rollout afterwards and whether this call set the mark.
func (s *Store) ReleaseFailure(ctx context.Context, app, env, version string, b puller.Broken, brokenAfter int) (puller.Rollout, bool, error) {
	if b.At.IsZero() {
		b.At = s.now()
	}
	raw, _ := json.Marshal(b)
	res, err := releaseFailure.Run(ctx, s.rdb, []string{s.rolloutKey(app, env, version), s.key(app, env, "broken")},
		b.Host, raw, max(brokenAfter, 1), version, b.At.UTC().Format(time.RFC3339Nano)).Int64Slice()
	if err != nil {
		return puller.Rollout{}, false, fmt.Errorf("record release failure of %s/%s %s: %w", app, env, version, err)
	}
	r, err := s.Rollout(ctx, app, env, version)
	return r, len(res) == 2 && res[1] == 1, err
}

// leaveRollout counts a host that left the rollout after a host fault and
// finishes the rollout when every remaining host is counted.
var leaveRollout = redis.NewScript(`
redis.call('HINCRBY', KEYS[1], 'host_failed', 1)
local t = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local d = tonumber(redis.call('HGET', KEYS[1], 'done') or '0')
local f = tonumber(redis.call('HGET', KEYS[1], 'failed') or '0')
local hf = tonumber(redis.call('HGET', KEYS[1], 'host_failed') or '0')
if t > 0 and d + f + hf >= t and d + f > 0 then
  if redis.call('HSETNX', KEYS[1], 'finished', ARGV[1]) == 1 and f == 0 then
    local ev = cjson.decode(ARGV[2])
    ev['total'] = t
    ev['done'] = d
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'kind', 'rollout_done', 'event', cjson.encode(ev))
  end
end
return 1`)

// LeaveRollout takes a host out of version's rollout after a host fault: it
// counts in host_failed and no longer toward the total.
func (s *Store) LeaveRollout(ctx context.Context, app, env, version string) (puller.Rollout, error) {
	now := s.now().UTC()
	raw, _ := json.Marshal(event.New(event.RolloutDone, app, env, version, "", now))
	if err := leaveRollout.Run(ctx, s.rdb, []string{s.rolloutKey(app, env, version), s.key(app, env, "history")},
		now.Format(time.RFC3339Nano), raw, HistoryLen).Err(); err != nil {
		return puller.Rollout{}, fmt.Errorf("leave rollout of %s/%s %s: %w", app, env, version, err)
	}
	return s.Rollout(ctx, app, env, version)
}

// stepDown starts the rollout anew (a rollback to version) when it finished
// or was not started by a step down; otherwise it counts in as startRollout.
var stepDown = redis.NewScript(`
local down = redis.call('HGET', KEYS[1], 'down')
if redis.call('HEXISTS', KEYS[1], 'finished') == 1 or not down then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'total', ARGV[1], 'started', ARGV[2], 'done', 0, 'failed', 0, 'down', 1)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'kind', 'rollout_started', 'event', ARGV[3])
  return 1
end
local t = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if tonumber(ARGV[1]) > t then redis.call('HSET', KEYS[1], 'total', ARGV[1]) end
return 0`)

// StepDown records that a host goes back to version, older than the one it
// runs: the first host to do so after version's rollout finished (or after a
// rollout that was not a step down) starts the rollout anew, its counts at 0
// and a rollout_started entry in the history; the others count in as
// StartRollout does. The hash's down field marks a step-down rollout.
func (s *Store) StepDown(ctx context.Context, app, env, version string, alive int) error {
	now := s.now().UTC()
	ev := event.New(event.RolloutStarted, app, env, version, "", now)
	ev.Total = alive
	ev.Reason = "rollback"
	raw, _ := json.Marshal(ev)
	err := stepDown.Run(ctx, s.rdb, []string{s.rolloutKey(app, env, version), s.key(app, env, "history")},
		alive, now.Format(time.RFC3339Nano), raw, HistoryLen).Err()
	if err != nil {
		return fmt.Errorf("start step down of %s/%s to %s: %w", app, env, version, err)
	}
	return nil
}

// joinRollout counts a bootstrapped host in a running rollout: one more
// host, done.
var joinRollout = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'started') == 0 or redis.call('HEXISTS', KEYS[1], 'finished') == 1 then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'total', 1)
redis.call('HINCRBY', KEYS[1], 'done', 1)
return 1`)

// JoinRollout counts a host that bootstrapped straight onto version in
// version's rollout when one is running (started, not finished): total and
// done both grow by one, since the host was not live when the rollout
// counted its hosts. A first boot, or one after the rollout ended, writes
// nothing and returns joined false.
func (s *Store) JoinRollout(ctx context.Context, app, env, version string) (puller.Rollout, bool, error) {
	n, err := joinRollout.Run(ctx, s.rdb, []string{s.rolloutKey(app, env, version)}).Int()
	if err != nil {
		return puller.Rollout{}, false, fmt.Errorf("join rollout of %s/%s %s: %w", app, env, version, err)
	}
	if n == 0 {
		return puller.Rollout{}, false, nil
	}
	r, err := s.Rollout(ctx, app, env, version)
	return r, true, err
}

// RecordCap records the cap a deploy slot for version was granted under (the
// lease's Cap), shown by status.
func (s *Store) RecordCap(ctx context.Context, app, env, version string, cap int) error {
	if err := s.rdb.HSet(ctx, s.rolloutKey(app, env, version), "cap", cap).Err(); err != nil {
		return fmt.Errorf("record cap of %s/%s %s: %w", app, env, version, err)
	}
	return nil
}

// FinishHost counts one host's result for version (done when ok, else failed)
// and returns the rollout afterwards. A failure finishes the rollout.
func (s *Store) FinishHost(ctx context.Context, app, env, version string, ok bool) (puller.Rollout, error) {
	field := "failed"
	if ok {
		field = "done"
	}
	key := s.rolloutKey(app, env, version)
	now := s.now().UTC()
	raw, _ := json.Marshal(event.New(event.RolloutDone, app, env, version, "", now))
	if err := finishHost.Run(ctx, s.rdb, []string{key, s.key(app, env, "history")}, field, now.Format(time.RFC3339Nano), raw, HistoryLen).Err(); err != nil {
		return puller.Rollout{}, fmt.Errorf("count %s/%s %s: %w", app, env, version, err)
	}
	return s.Rollout(ctx, app, env, version)
}

// Rollout reads version's rollout; a rollout never started is the zero Rollout
// with Version set.
func (s *Store) Rollout(ctx context.Context, app, env, version string) (puller.Rollout, error) {
	m, err := s.rdb.HGetAll(ctx, s.rolloutKey(app, env, version)).Result()
	if err != nil {
		return puller.Rollout{}, fmt.Errorf("read rollout of %s/%s %s: %w", app, env, version, err)
	}
	return parseRollout(version, m), nil
}

func parseRollout(version string, m map[string]string) puller.Rollout {
	r := puller.Rollout{Version: version}
	r.Total, _ = strconv.Atoi(m["total"])
	r.Done, _ = strconv.Atoi(m["done"])
	r.Failed, _ = strconv.Atoi(m["failed"])
	r.HostFailed, _ = strconv.Atoi(m["host_failed"])
	for f := range m {
		if strings.HasPrefix(f, "release_failure:") {
			r.ReleaseFailures++
		}
	}
	r.Cap, _ = strconv.Atoi(m["cap"])
	r.Started, _ = time.Parse(time.RFC3339Nano, m["started"])
	r.Finished, _ = time.Parse(time.RFC3339Nano, m["finished"])
	return r
}

// Rollouts returns every rollout of app/env, the most recently started first.
func (s *Store) Rollouts(ctx context.Context, app, env string) ([]puller.Rollout, error) {
	prefix := s.rolloutKey(app, env, "")
	var out []puller.Rollout
	iter := s.rdb.Scan(ctx, 0, escapeGlob(prefix)+"*", 200).Iterator()
	for iter.Next(ctx) {
		version := strings.TrimPrefix(iter.Val(), prefix)
		r, err := s.Rollout(ctx, app, env, version)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list rollouts of %s/%s: %w", app, env, err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].Version > out[j].Version
	})
	return out, nil
}

// AppEnv names one app in one environment.
type AppEnv struct{ App, Env string }

// AppEnvs lists every app/env that has host records, broken marks, a pause
// or a history, sorted.
func (s *Store) AppEnvs(ctx context.Context) ([]AppEnv, error) {
	seen := map[AppEnv]bool{}
	for _, what := range []string{"hosts", "broken", "pause", "history"} {
		iter := s.rdb.Scan(ctx, 0, escapeGlob(s.prefix)+"*:"+what, 200).Iterator()
		for iter.Next(ctx) {
			rest := strings.TrimSuffix(strings.TrimPrefix(iter.Val(), s.prefix), ":"+what)
			app, env, ok := strings.Cut(rest, ":")
			if !ok || strings.Contains(env, ":") {
				continue
			}
			seen[AppEnv{app, env}] = true
		}
		if err := iter.Err(); err != nil {
			return nil, fmt.Errorf("list apps: %w", err)
		}
	}
	out := make([]AppEnv, 0, len(seen))
	for ae := range seen {
		out = append(out, ae)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].Env < out[j].Env
	})
	return out, nil
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}
