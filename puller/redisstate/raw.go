package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/puller"
)

// Raw is every record of one app/env as Redis holds it, unparsed, for views
// that must show bad data as bad rather than drop it or fail on it.
type Raw struct {
	AppEnv
	Hosts    map[string]string            // host -> record
	Broken   map[string]string            // version -> mark
	Pause    *string                      // the pause record, nil when not paused
	Rollouts map[string]map[string]string // version -> rollout hash
	// Errs are the keys Redis refused to read (a key of the wrong type):
	// they spoil this app/env only.
	Errs []error
	// Forgotten is how many host records this read dropped, not rewritten
	// for Options.ForgetAfter.
	Forgotten int
}

// forgetScript removes the host records given (field, value pairs) whose
// value is still the one read, so a record rewritten meanwhile stays; it
// returns how many it removed.
var forgetStale = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i+1] then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n`)

// forget drops, from hosts and from Redis, the records older than
// ForgetAfter (an unparsable record is kept: views show it as bad).
func (s *Store) forget(ctx context.Context, key string, hosts map[string]string) (int, error) {
	if s.forgetAfter <= 0 {
		return 0, nil
	}
	cutoff := s.now().Add(-s.forgetAfter)
	var args []any
	for h, raw := range hosts {
		var r puller.HostRecord
		if json.Unmarshal([]byte(raw), &r) == nil && !r.At.IsZero() && r.At.Before(cutoff) {
			args = append(args, h, raw)
		}
	}
	if len(args) == 0 {
		return 0, nil
	}
	n, err := forgetStale.Run(ctx, s.rdb, []string{key}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("forget hosts not seen for %s in %s: %w", s.forgetAfter, key, err)
	}
	for i := 0; i < len(args); i += 2 {
		delete(hosts, args[i].(string))
	}
	return n, nil
}

// ReadRaw reads app/env's records. A key Redis refuses (WRONGTYPE) lands in
// Raw.Errs; only a failure to talk to Redis is returned as an error.
func (s *Store) ReadRaw(ctx context.Context, app, env string) (Raw, error) {
	r := Raw{AppEnv: AppEnv{app, env}, Rollouts: map[string]map[string]string{}}
	keep := func(key string, err error) error {
		var rerr redis.Error
		if errors.As(err, &rerr) && !errors.Is(err, redis.Nil) {
			r.Errs = append(r.Errs, fmt.Errorf("%s: %s", key, strings.TrimSpace(rerr.Error())))
			return nil
		}
		return err
	}
	pipe := s.rdb.Pipeline()
	hosts := pipe.HGetAll(ctx, s.key(app, env, "hosts"))
	broken := pipe.HGetAll(ctx, s.key(app, env, "broken"))
	pause := pipe.Get(ctx, s.key(app, env, "pause"))
	_, _ = pipe.Exec(ctx)
	if err := keep(hosts.Args()[1].(string), hosts.Err()); err != nil {
		return r, fmt.Errorf("read %s/%s: %w", app, env, err)
	}
	r.Hosts = hosts.Val()
	var err error
	if r.Forgotten, err = s.forget(ctx, s.key(app, env, "hosts"), r.Hosts); err != nil {
		return r, fmt.Errorf("read %s/%s: %w", app, env, err)
	}
	if err := keep(broken.Args()[1].(string), broken.Err()); err != nil {
		return r, fmt.Errorf("read %s/%s: %w", app, env, err)
	}
	r.Broken = broken.Val()
	switch err := pause.Err(); {
	case err == nil:
		v := pause.Val()
		r.Pause = &v
	case errors.Is(err, redis.Nil):
	default:
		if err := keep(s.key(app, env, "pause"), err); err != nil {
			return r, fmt.Errorf("read %s/%s: %w", app, env, err)
		}
		v := "(unreadable)"
		r.Pause = &v // a pause key we cannot read still means someone paused it
	}

	prefix := s.rolloutKey(app, env, "")
	var keys []string
	iter := s.rdb.Scan(ctx, 0, escapeGlob(prefix)+"*", 200).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return r, fmt.Errorf("list rollouts of %s/%s: %w", app, env, err)
	}
	sort.Strings(keys)
	pipe = s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, k)
	}
	if len(keys) > 0 {
		_, _ = pipe.Exec(ctx)
	}
	for i, c := range cmds {
		if err := keep(keys[i], c.Err()); err != nil {
			return r, fmt.Errorf("read %s/%s: %w", app, env, err)
		}
		if c.Err() == nil {
			r.Rollouts[strings.TrimPrefix(keys[i], prefix)] = c.Val()
		}
	}
	return r, nil
}
