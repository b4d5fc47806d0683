package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller"
)

// A version's canary stage lives in its rollout hash,
// {prefix}{app}:{env}:rollout:{version}, beside the counts:
//
//	canary                 the stage (puller.CanaryStage)
//	canary_want            places, fixed when the stage opens
//	canary_host:{host}     a place: its lease expiry (Redis server ms)
//	canary_server:{host}   the place holder's load balancer server name
//	canary_ready:{host}    set once the holder is healthy on the version
//	canary_count           live places at the latest write
//	canary_expires         the earliest lease expiry among them (ms)
//	canary_verdict         why the stage ended (the analysis figures, an alarm, an operator's reason)
//	canary_by              who ended it (a host, or an operator)
//	stage                  what status shows while the stage holds the fleet
//
// Waiters read canary, canary_want, canary_count and canary_expires with one
// pipelined HMGET (Peek) and run a script only when a place is free; every
// change of stage, and a place given up, is published on the app/env's
// channel {prefix}{app}:{env}:canary (Wake).

// canaryLib is the Lua the canary scripts share: now() in server ms, and
// view(), which drops lapsed places, records the live count and earliest
// expiry, and returns {stage, mine, want, ready, servers...}.
const canaryLib = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function view(key, ms, host)
  local all = redis.call('HGETALL', key)
  local f = {}
  for i = 1, #all, 2 do f[all[i]] = all[i + 1] end
  local n, minexp, ready, mine = 0, nil, 0, 0
  local servers = {}
  for k, v in pairs(f) do
    if string.sub(k, 1, 12) == 'canary_host:' then
      local h = string.sub(k, 13)
      local exp = tonumber(v) or 0
      if exp <= ms then
        redis.call('HDEL', key, k, 'canary_server:' .. h, 'canary_ready:' .. h)
      else
        n = n + 1
        if not minexp or exp < minexp then minexp = exp end
        if h == host then mine = 1 end
        if f['canary_ready:' .. h] then ready = ready + 1 end
        table.insert(servers, f['canary_server:' .. h] or h)
      end
    end
  end
  if f['canary'] then
    redis.call('HSET', key, 'canary_count', n, 'canary_expires', minexp or 0)
  end
  local out = {f['canary'] or '', mine, tonumber(f['canary_want'] or '0') or 0, ready}
  for _, s in ipairs(servers) do table.insert(out, s) end
  return out
end
local function clear(key)
  local all = redis.call('HKEYS', key)
  for _, k in ipairs(all) do
    if string.sub(k, 1, 7) == 'canary_' or k == 'canary' or k == 'stage' then redis.call('HDEL', key, k) end
  end
end
`

// joinScript: KEYS rollout, broken. ARGV version, host, server, want, ttl ms.
// A stage that failed while the version is no longer marked broken (an
// operator unbroke it) starts again.
var joinScript = redis.NewScript(canaryLib + `
local ms = now()
local stage = redis.call('HGET', KEYS[1], 'canary') or ''
local broken = redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1
if (stage == 'failed' or stage == 'aborted') and not broken then
  clear(KEYS[1])
  stage = ''
end
if broken and (stage == '' or stage == 'canary' or stage == 'awaiting_promotion') then
  local v = view(KEYS[1], ms, ARGV[2])
  v[1] = 'failed'
  v[2] = 0
  table.insert(v, 2, 0)
  return v
end
if stage == '' then
  redis.call('HSET', KEYS[1], 'canary', 'canary', 'stage', 'canary', 'canary_want', ARGV[4])
  stage = 'canary'
end
local v = view(KEYS[1], ms, ARGV[2])
local new = 0
if stage == 'canary' and (v[2] == 1 or #v - 4 < v[3]) then
  if v[2] == 0 then new = 1 end
  redis.call('HSET', KEYS[1], 'canary_host:' .. ARGV[2], ms + tonumber(ARGV[5]), 'canary_server:' .. ARGV[2], ARGV[3])
  v = view(KEYS[1], ms, ARGV[2])
end
table.insert(v, 2, new)
return v`)

// renewScript: KEYS rollout. ARGV host, ttl ms. Extends a live place while
// the stage runs or awaits promotion.
var renewScript = redis.NewScript(canaryLib + `
local ms = now()
local v = view(KEYS[1], ms, ARGV[1])
if v[2] == 1 and (v[1] == 'canary' or v[1] == 'awaiting_promotion') then
  redis.call('HSET', KEYS[1], 'canary_host:' .. ARGV[1], ms + tonumber(ARGV[2]))
end
table.insert(v, 2, 0)
return v`)

// readyScript: KEYS rollout. ARGV host.
var readyScript = redis.NewScript(canaryLib + `
local ms = now()
if redis.call('HEXISTS', KEYS[1], 'canary_host:' .. ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'canary_ready:' .. ARGV[1], ms)
end
local v = view(KEYS[1], ms, ARGV[1])
table.insert(v, 2, 0)
return v`)

// leaveScript: KEYS rollout. ARGV host, channel.
var leaveScript = redis.NewScript(canaryLib + `
if redis.call('HDEL', KEYS[1], 'canary_host:' .. ARGV[1], 'canary_server:' .. ARGV[1], 'canary_ready:' .. ARGV[1]) > 0 then
  view(KEYS[1], now(), ARGV[1])
  redis.call('PUBLISH', ARGV[2], 'leave')
end
return 1`)

// endScript moves the stage from one of the stages in ARGV[1] (a
// space-separated list) to ARGV[2], records the verdict and who, sets the
// display stage (ARGV[5], "" to remove it), appends the event to the
// history and publishes the change. With ARGV[7] set it also writes the
// broken mark (HSETNX) and finishes the rollout. KEYS rollout, history,
// broken. ARGV from, to, verdict, by, display, event, version, mark, finished, channel, maxlen.
// Returns {moved, stage before}.
var endScript = redis.NewScript(`
local stage = redis.call('HGET', KEYS[1], 'canary') or ''
local ok = false
for s in string.gmatch(ARGV[1], '%S+') do if s == stage then ok = true end end
if not ok then return {0, stage} end
redis.call('HSET', KEYS[1], 'canary', ARGV[2], 'canary_verdict', ARGV[3], 'canary_by', ARGV[4])
if ARGV[5] == '' then redis.call('HDEL', KEYS[1], 'stage') else redis.call('HSET', KEYS[1], 'stage', ARGV[5]) end
if ARGV[8] ~= '' then
  redis.call('HSETNX', KEYS[3], ARGV[7], ARGV[8])
  redis.call('HSETNX', KEYS[1], 'finished', ARGV[9])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[11], '*', 'kind', ARGV[12], 'event', ARGV[6])
redis.call('PUBLISH', ARGV[10], ARGV[2])
return {1, stage}`)

var _ puller.Canaries = (*Store)(nil)

func (s *Store) canaryChannel(app, env string) string { return s.key(app, env, "canary") }

func parseView(res []any, err error) (puller.CanaryView, error) {
	if err != nil {
		return puller.CanaryView{}, err
	}
	if len(res) < 5 {
		return puller.CanaryView{}, fmt.Errorf("unexpected reply %v", res)
	}
	num := func(x any) int { n, _ := x.(int64); return int(n) }
	stage, _ := res[0].(string)
	v := puller.CanaryView{Stage: puller.CanaryStage(stage), New: num(res[1]) == 1, Canary: num(res[2]) == 1,
		Want: num(res[3]), Ready: num(res[4])}
	for _, x := range res[5:] {
		if s, ok := x.(string); ok {
			v.Servers = append(v.Servers, s)
		}
	}
	sort.Strings(v.Servers)
	return v, nil
}

// Join gives host a canary place for version (see puller.Canaries).
func (s *Store) Join(ctx context.Context, app, env, version, host, server string, want int, ttl time.Duration) (puller.CanaryView, error) {
	if want < 1 {
		return puller.CanaryView{}, fmt.Errorf("join the canary stage of %s/%s %s: %d places", app, env, version, want)
	}
	if server == "" {
		server = host
	}
	res, err := joinScript.Run(ctx, s.rdb, []string{s.rolloutKey(app, env, version), s.key(app, env, "broken")},
		version, host, server, want, ttl.Milliseconds()).Slice()
	v, err := parseView(res, err)
	if err != nil {
		return v, fmt.Errorf("join the canary stage of %s/%s %s: %w", app, env, version, err)
	}
	return v, nil
}

// Peek reads the stage, whether a place is free and whether host holds
// one, in one round trip and without a script: TIME and an HMGET of the
// rollout, HEXISTS of the mark.
func (s *Store) Peek(ctx context.Context, app, env, version, host string) (puller.CanaryStage, bool, bool, error) {
	pipe := s.rdb.Pipeline()
	tm := pipe.Time(ctx)
	f := pipe.HMGet(ctx, s.rolloutKey(app, env, version), "canary", "canary_want", "canary_count", "canary_expires", "canary_host:"+host)
	broken := pipe.HExists(ctx, s.key(app, env, "broken"), version)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", false, false, fmt.Errorf("read the canary stage of %s/%s %s: %w", app, env, version, err)
	}
	str := func(i int) string { x, _ := f.Val()[i].(string); return x }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	stage := puller.CanaryStage(str(0))
	now := tm.Val().UnixMilli()
	mine := num(4) > now
	switch {
	case broken.Val():
		return puller.CanaryFailed, false, false, nil
	case stage.Ended():
		return stage, true, false, nil // unbroken since: Join starts the stage again
	case stage == puller.CanaryNone:
		return stage, true, false, nil
	case stage == puller.CanaryRunning:
		return stage, num(2) < num(1) || num(3) <= now, mine, nil
	}
	return stage, false, mine, nil
}

// Wake subscribes to app/env's canary channel.
func (s *Store) Wake(ctx context.Context, app, env string) <-chan struct{} {
	out := make(chan struct{}, 1)
	ps := s.rdb.Subscribe(ctx, s.canaryChannel(app, env))
	_, _ = ps.ReceiveTimeout(ctx, time.Second) // listening before the caller's first read
	go func() {
		defer ps.Close()
		ch := ps.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-ch:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// Renew extends host's place.
func (s *Store) Renew(ctx context.Context, app, env, version, host string, ttl time.Duration) (puller.CanaryView, error) {
	res, err := renewScript.Run(ctx, s.rdb, []string{s.rolloutKey(app, env, version)}, host, ttl.Milliseconds()).Slice()
	v, err := parseView(res, err)
	if err != nil {
		return v, fmt.Errorf("renew the canary place of %s in %s/%s %s: %w", host, app, env, version, err)
	}
	return v, nil
}

// Ready records that host is healthy on version.
func (s *Store) Ready(ctx context.Context, app, env, version, host string) (puller.CanaryView, error) {
	res, err := readyScript.Run(ctx, s.rdb, []string{s.rolloutKey(app, env, version)}, host).Slice()
	v, err := parseView(res, err)
	if err != nil {
		return v, fmt.Errorf("record canary %s ready in %s/%s %s: %w", host, app, env, version, err)
	}
	return v, nil
}

// Leave gives host's place up and wakes the waiters.
func (s *Store) Leave(ctx context.Context, app, env, version, host string) error {
	if err := leaveScript.Run(ctx, s.rdb, []string{s.rolloutKey(app, env, version)}, host, s.canaryChannel(app, env)).Err(); err != nil {
		return fmt.Errorf("leave the canary stage of %s/%s %s: %w", app, env, version, err)
	}
	return nil
}

// end runs endScript; mark, when not nil, is written as the broken mark.
func (s *Store) end(ctx context.Context, app, env, version string, from []puller.CanaryStage, to puller.CanaryStage,
	verdict, by, display string, ev event.Deploy, mark *puller.Broken) (bool, puller.CanaryStage, error) {
	var list string
	for _, f := range from {
		list += " " + string(f)
	}
	evRaw, _ := json.Marshal(ev)
	var markRaw []byte
	if mark != nil {
		markRaw, _ = json.Marshal(mark)
	}
	res, err := endScript.Run(ctx, s.rdb,
		[]string{s.rolloutKey(app, env, version), s.key(app, env, "history"), s.key(app, env, "broken")},
		list, string(to), verdict, by, display, evRaw, version, string(markRaw),
		ev.Time.UTC().Format(time.RFC3339Nano), s.canaryChannel(app, env), HistoryLen, string(ev.Kind)).Slice()
	if err != nil {
		return false, "", err
	}
	n, _ := res[0].(int64)
	before, _ := res[1].(string)
	return n == 1, puller.CanaryStage(before), nil
}

// Pass ends a running stage with a passing verdict.
func (s *Store) Pass(ctx context.Context, app, env, version, host, verdict string, manual bool) (puller.CanaryStage, bool, error) {
	to, kind, display := puller.CanaryPassed, event.CanaryPassed, ""
	if manual {
		to, kind, display = puller.CanaryAwaiting, event.CanaryAwaiting, "awaiting promotion"
	}
	ev := event.New(kind, app, env, version, host, s.now())
	ev.Reason = verdict
	moved, before, err := s.end(ctx, app, env, version, []puller.CanaryStage{puller.CanaryRunning}, to, verdict, host, display, ev, nil)
	if err != nil {
		return "", false, fmt.Errorf("end the canary stage of %s/%s %s: %w", app, env, version, err)
	}
	if !moved {
		return before, false, nil
	}
	return to, true, nil
}

// Fail ends a running or awaiting stage as failed. The broken mark is the
// agent's failure path's to write (State.MarkBroken), before this.
func (s *Store) Fail(ctx context.Context, app, env, version, host, reason string) (bool, error) {
	ev := event.New(event.CanaryFailed, app, env, version, host, s.now())
	ev.Reason = reason
	moved, _, err := s.end(ctx, app, env, version, []puller.CanaryStage{puller.CanaryRunning, puller.CanaryAwaiting},
		puller.CanaryFailed, reason, host, "", ev, nil)
	if err != nil {
		return false, fmt.Errorf("fail the canary stage of %s/%s %s: %w", app, env, version, err)
	}
	return moved, nil
}

// ErrNoCanary is returned by Promote and Abort when version has no canary
// stage that they can end.
var ErrNoCanary = errors.New("no canary stage to end")

// CanaryStageOf reads version's canary stage and its verdict.
func (s *Store) CanaryStageOf(ctx context.Context, app, env, version string) (puller.CanaryStage, string, error) {
	v, err := s.rdb.HMGet(ctx, s.rolloutKey(app, env, version), "canary", "canary_verdict").Result()
	if err != nil {
		return "", "", fmt.Errorf("read the canary stage of %s/%s %s: %w", app, env, version, err)
	}
	stage, _ := v[0].(string)
	verdict, _ := v[1].(string)
	return puller.CanaryStage(stage), verdict, nil
}

// Promote ends version's running or awaiting canary stage by an operator's
// decision (ev, a canary_promoted event with the actor): every host may take
// the version. It returns the stage it ended, or ErrNoCanary (changing
// nothing) with the stage found.
func (s *Store) Promote(ctx context.Context, app, env, version string, ev event.Deploy) (puller.CanaryStage, error) {
	moved, before, err := s.end(ctx, app, env, version, []puller.CanaryStage{puller.CanaryRunning, puller.CanaryAwaiting},
		puller.CanaryPromoted, ev.Reason, ev.Actor, "", ev, nil)
	if err != nil {
		return "", fmt.Errorf("promote the canary of %s/%s %s: %w", app, env, version, err)
	}
	if !moved {
		return before, fmt.Errorf("%s/%s %s: %w (stage %q)", app, env, version, ErrNoCanary, before)
	}
	return before, nil
}

// Abort fails version's running or awaiting canary stage by an operator's
// decision (ev, a canary_aborted event with the actor): the version is
// marked broken (mark) and its rollout finished, in the same script; the
// canaries roll back. ErrNoCanary as for Promote.
func (s *Store) Abort(ctx context.Context, app, env, version string, mark puller.Broken, ev event.Deploy) (puller.CanaryStage, error) {
	if mark.At.IsZero() {
		mark.At = s.now().UTC()
	}
	moved, before, err := s.end(ctx, app, env, version, []puller.CanaryStage{puller.CanaryRunning, puller.CanaryAwaiting},
		puller.CanaryAborted, ev.Reason, ev.Actor, "", ev, &mark)
	if err != nil {
		return "", fmt.Errorf("abort the canary of %s/%s %s: %w", app, env, version, err)
	}
	if !moved {
		return before, fmt.Errorf("%s/%s %s: %w (stage %q)", app, env, version, ErrNoCanary, before)
	}
	return before, nil
}
