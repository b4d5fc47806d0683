package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller"
)

// Keys of the operator's control plane (see docs/redis.md):
//
//	{prefix}{app}:{env}:pause    string JSON {actor, reason, at} while paused
//	{prefix}{app}:{env}:history  stream of deploy events (MAXLEN ~ HistoryLen)

// HistoryLen is the approximate number of entries each history stream keeps.
const HistoryLen = 1000

// Pause is who paused an app/env, why and when.
type Pause = puller.Pause

// pauseScript sets the pause unless one is set and records the action in the
// history; it returns the pause in force afterwards and whether it was new.
var pauseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'kind', 'paused', 'event', ARGV[2])
return {1, ARGV[1]}`)

// SetPause pauses app/env: no host starts a deploy of it until ClearPause.
// It reports whether this call paused it; when it was paused already, the
// pause in force is returned and nothing changes. ev is recorded in the
// app/env's history.
func (s *Store) SetPause(ctx context.Context, app, env string, p Pause, ev event.Deploy) (Pause, bool, error) {
	if p.At.IsZero() {
		p.At = s.now().UTC()
	}
	raw, _ := json.Marshal(p)
	evRaw, _ := json.Marshal(ev)
	res, err := pauseScript.Run(ctx, s.rdb, []string{s.key(app, env, "pause"), s.key(app, env, "history")},
		raw, evRaw, HistoryLen).Slice()
	if err != nil {
		return Pause{}, false, fmt.Errorf("pause %s/%s: %w", app, env, err)
	}
	n, _ := res[0].(int64)
	cur, _ := res[1].(string)
	return parsePause(cur), n == 1, nil
}

// clearPauseScript removes the pause and records the action; it returns the
// pause it removed, or false when there was none.
var clearPauseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
redis.call('DEL', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'kind', 'resumed', 'event', ARGV[1])
return cur`)

// ClearPause resumes app/env and returns the pause it lifted, nil when the
// app/env was not paused (then nothing changes).
func (s *Store) ClearPause(ctx context.Context, app, env string, ev event.Deploy) (*Pause, error) {
	evRaw, _ := json.Marshal(ev)
	raw, err := clearPauseScript.Run(ctx, s.rdb, []string{s.key(app, env, "pause"), s.key(app, env, "history")},
		evRaw, HistoryLen).Text()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resume %s/%s: %w", app, env, err)
	}
	p := parsePause(raw)
	return &p, nil
}

// Paused returns app/env's pause, nil when it is not paused.
func (s *Store) Paused(ctx context.Context, app, env string) (*puller.Pause, error) {
	raw, err := s.rdb.Get(ctx, s.key(app, env, "pause")).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pause of %s/%s: %w", app, env, err)
	}
	p := parsePause(raw)
	return &p, nil
}

// parsePause reads a pause record; one written by hand keeps its text as the
// reason (a pause is a pause even when its record does not parse).
func parsePause(raw string) Pause {
	var p Pause
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return Pause{Reason: raw}
	}
	return p
}

// Entry is one history entry: a deploy event and the stream's entry id.
type Entry struct {
	ID string
	event.Deploy
	// Unreadable is set (to the raw fields) when the entry does not parse.
	Unreadable string
}

// Record appends ev to app/env's history.
func (s *Store) Record(ctx context.Context, ev event.Deploy) error {
	raw, _ := json.Marshal(ev)
	err := s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: s.key(ev.App, ev.Env, "history"), MaxLen: HistoryLen, Approx: true,
		Values: []any{"kind", string(ev.Kind), "event", string(raw)},
	}).Err()
	if err != nil {
		return fmt.Errorf("record %s of %s/%s in history: %w", ev.Kind, ev.App, ev.Env, err)
	}
	return nil
}

// History returns up to limit of app/env's newest history entries, oldest
// first (every entry kept when limit <= 0).
func (s *Store) History(ctx context.Context, app, env string, limit int) ([]Entry, error) {
	key := s.key(app, env, "history")
	var msgs []redis.XMessage
	var err error
	if limit > 0 {
		msgs, err = s.rdb.XRevRangeN(ctx, key, "+", "-", int64(limit)).Result()
	} else {
		msgs, err = s.rdb.XRevRange(ctx, key, "+", "-").Result()
	}
	if err != nil {
		return nil, fmt.Errorf("read history of %s/%s: %w", app, env, err)
	}
	out := make([]Entry, 0, len(msgs))
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		e := Entry{ID: m.ID}
		raw, _ := m.Values["event"].(string)
		if err := json.Unmarshal([]byte(raw), &e.Deploy); err != nil || e.Kind == "" {
			e.Deploy = event.Deploy{App: app, Env: env}
			e.Unreadable = fmt.Sprint(m.Values)
			if ms, err := strconv.ParseInt(before(m.ID, '-'), 10, 64); err == nil {
				e.Time = time.UnixMilli(ms).UTC()
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func before(s string, c byte) string {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i]
		}
	}
	return s
}

// unbreakScript removes version's broken mark and resets its halted rollout
// (failed back to 0, finished cleared, so the hosts take it again), records
// the action, and returns the mark and the rollout's failed and finished
// fields as they were; false when version was not marked.
var unbreakScript = redis.NewScript(`
local mark = redis.call('HGET', KEYS[1], ARGV[1])
if not mark then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local failed = redis.call('HGET', KEYS[2], 'failed') or ''
local finished = redis.call('HGET', KEYS[2], 'finished') or ''
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'failed', 0)
  redis.call('HDEL', KEYS[2], 'finished')
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'kind', 'unbroken', 'event', ARGV[2])
return {mark, failed, finished}`)

// Unbroken is what Unbreak cleared.
type Unbroken struct {
	Mark puller.Broken
	// Failed and Finished are the rollout's fields before the reset ("" when
	// the rollout had none).
	Failed, Finished string
}

// ErrNotBroken is returned by Unbreak for a version with no broken mark.
var ErrNotBroken = errors.New("not marked broken")

// Unbreak removes version's broken mark (an operator's decision) and resets
// its halted rollout so that it runs again, recording ev in the history. It
// returns ErrNotBroken, changing nothing, when version has no mark.
func (s *Store) Unbreak(ctx context.Context, app, env, version string, ev event.Deploy) (Unbroken, error) {
	evRaw, _ := json.Marshal(ev)
	res, err := unbreakScript.Run(ctx, s.rdb,
		[]string{s.key(app, env, "broken"), s.rolloutKey(app, env, version), s.key(app, env, "history")},
		version, evRaw, HistoryLen).Slice()
	if errors.Is(err, redis.Nil) {
		return Unbroken{}, fmt.Errorf("%s/%s %s: %w", app, env, version, ErrNotBroken)
	}
	if err != nil {
		return Unbroken{}, fmt.Errorf("unbreak %s/%s %s: %w", app, env, version, err)
	}
	var u Unbroken
	raw, _ := res[0].(string)
	if err := json.Unmarshal([]byte(raw), &u.Mark); err != nil {
		u.Mark = puller.Broken{Reason: raw}
	}
	u.Failed, _ = res[1].(string)
	u.Finished, _ = res[2].(string)
	return u, nil
}

// forgetScript removes a host's record and records the action; 0 when the
// host had no record.
var forgetScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'kind', 'forgotten', 'event', ARGV[2])
return 1`)

// ErrNoHost is returned by Forget for a host with no record.
var ErrNoHost = errors.New("no such host")

// Forget removes host's record from app/env (a terminated instance) and
// records ev in the history; ErrNoHost when there was no record.
func (s *Store) Forget(ctx context.Context, app, env, host string, ev event.Deploy) error {
	evRaw, _ := json.Marshal(ev)
	n, err := forgetScript.Run(ctx, s.rdb, []string{s.key(app, env, "hosts"), s.key(app, env, "history")},
		host, evRaw, HistoryLen).Int()
	if err != nil {
		return fmt.Errorf("forget host %s of %s/%s: %w", host, app, env, err)
	}
	if n == 0 {
		return fmt.Errorf("%s/%s host %s: %w", app, env, host, ErrNoHost)
	}
	return nil
}

// Known reports whether Redis holds any record of app/env (hosts, broken
// marks, a pause or a history).
func (s *Store) Known(ctx context.Context, app, env string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.key(app, env, "hosts"), s.key(app, env, "broken"),
		s.key(app, env, "pause"), s.key(app, env, "history")).Result()
	if err != nil {
		return false, fmt.Errorf("look up %s/%s: %w", app, env, err)
	}
	return n > 0, nil
}
