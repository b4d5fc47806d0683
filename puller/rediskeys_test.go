package puller_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/docref"
	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// keyRecorder is a go-redis hook that records the key of every command
// sent: the first argument of a plain command, every KEYS entry of a script.
type keyRecorder struct {
	mu   sync.Mutex
	keys map[string]string // key -> the command that named it
}

func (r *keyRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *keyRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.add(cmd.Args())
		return next(ctx, cmd)
	}
}

func (r *keyRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			r.add(c.Args())
		}
		return next(ctx, cmds)
	}
}

func (r *keyRecorder) add(args []any) {
	if len(args) < 2 {
		return
	}
	name := strings.ToLower(fmt.Sprint(args[0]))
	var keys []any
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro":
		n, _ := strconv.Atoi(fmt.Sprint(args[2]))
		keys = args[3 : 3+n]
	case "publish", "subscribe", "unsubscribe", "psubscribe", "scan", "ping", "hello", "client",
		"script", "time", "info", "select", "auth", "command", "flushall", "flushdb":
		// no key (a channel, or the server itself)
	default:
		keys = args[1:2]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.keys[fmt.Sprint(k)] = name
	}
}

// keyPattern turns a row of docs/redis.md ("{app}:{env}:rollout:{version}")
// into a regexp over a key without its prefix. App, env and host names have
// no ':'; a version may (an epoch).
func keyPattern(row string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for rest := row; rest != ""; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		if rest[i+1:i+j] == "version" {
			b.WriteString(".+")
		} else {
			b.WriteString("[^:]+")
		}
		rest = rest[i+j+1:]
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// TestRedisKeysDocumented holds docs/redis.md to the code: agents with the
// real semaphore and state store run a rollout, a failed release, and the
// operator's calls against a real redis-server; every key any command named,
// and every key left at the end, must match a row of the table, and every
// row must be matched.
func TestRedisKeysDocumented(t *testing.T) {
	rows, err := docref.Keys("../docs/redis.md", "Keys")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 5 {
		t.Fatalf("read only %d rows from docs/redis.md: %q", len(rows), rows)
	}
	tb := newTestbed(t)
	rec := &keyRecorder{keys: map[string]string{}}
	tb.rdb.AddHook(rec)
	ctx := context.Background()
	agents, once := tb.rolloutThenFailure(t)
	for _, a := range agents[1:] {
		if err := once(a); err != nil {
			t.Fatal(err)
		}
	}
	st := tb.state
	ev := func(k event.Kind, version string) event.Deploy {
		return event.New(k, "hello", "staging", version, "operator", time.Now())
	}
	if _, _, err := st.SetPause(ctx, "hello", "staging", redisstate.Pause{Actor: "ops", Reason: "test"}, ev(event.Paused, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Paused(ctx, "hello", "staging"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ClearPause(ctx, "hello", "staging", ev(event.Resumed, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Unbreak(ctx, "hello", "staging", "1.2-1", ev(event.Unbroken, "1.2-1")); err != nil {
		t.Fatal(err)
	}
	if err := st.Forget(ctx, "hello", "staging", "i-3", ev(event.Forgotten, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.History(ctx, "hello", "staging", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Status(ctx, "hello", "staging", 0); err != nil {
		t.Fatal(err)
	}

	seen := map[string]string{}
	rec.mu.Lock()
	for k, cmd := range rec.keys {
		seen[k] = cmd
	}
	rec.mu.Unlock()
	iter := tb.rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		if _, ok := seen[iter.Val()]; !ok {
			seen[iter.Val()] = "scan"
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	matched := map[string]bool{}
	var keys []string
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rel, ok := strings.CutPrefix(k, "aptfleet:")
		if !ok {
			t.Errorf("key %s (%s) is outside the prefix", k, seen[k])
			continue
		}
		found := false
		for _, row := range rows {
			if keyPattern(row).MatchString(rel) {
				matched[row], found = true, true
			}
		}
		if !found {
			t.Errorf("key %s (%s) has no row in docs/redis.md", k, seen[k])
		}
	}
	// Rows of the packages this run exercises must each be matched.
	doc, err := os.ReadFile("../docs/redis.md")
	if err != nil {
		t.Fatal(err)
	}
	exercised := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) > 4 && (strings.Contains(cells[3], "`puller/redislock`") || strings.Contains(cells[3], "`puller/redisstate`")) {
			if k := strings.Trim(strings.TrimSpace(cells[1]), "`"); k != "" {
				exercised[k] = true
			}
		}
	}
	if len(exercised) < 5 {
		t.Fatalf("found only %d rows owned by puller/redislock and puller/redisstate", len(exercised))
	}
	for _, row := range rows {
		if exercised[row] && !matched[row] {
			t.Errorf("docs/redis.md lists %s, but no command named such a key", row)
		}
	}
	t.Logf("%d keys named by commands or left in Redis, %d rows", len(keys), len(rows))
}
