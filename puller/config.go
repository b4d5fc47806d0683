package puller

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/aptfleet/aptfleet/internal/debian"
	"github.com/aptfleet/aptfleet/repo/storeurl"
)

// DefaultConfigPath is where the agent's configuration lives on an instance.
const DefaultConfigPath = "/etc/aptfleet/puller.yaml"

// Config is the agent's configuration, /etc/aptfleet/puller.yaml. Every field
// has a default (DefaultConfig) except apps, which must list at least one app.
type Config struct {
	// HostID names this host in Redis, in Serf and in events. Default: ""
	// meaning the EC2 instance id read from IMDSv2 when available, else the
	// hostname (resolved by the command, not by this package).
	HostID string `yaml:"host_id"`
	// Apps are the applications this host runs. Required, at least one.
	Apps []App `yaml:"apps"`
	// Fraction of the live hosts of an app/env that may deploy at once:
	// cap = max(1, floor(fraction x alive members)). Default 0.25; must be in (0, 1].
	Fraction float64 `yaml:"fraction"`
	// Schedule is the cron spec (robfig/cron standard syntax, including
	// descriptors such as "@every 1m") of the periodic check. Default "@every 1m".
	Schedule string `yaml:"schedule"`
	// Jitter spreads the hosts' ticks: each host waits a fixed offset in
	// [0, jitter) derived from its host id after every tick. Default 20s.
	Jitter time.Duration `yaml:"jitter"`
	// LockTTL is the lease of a deploy slot; it is renewed every LockTTL/3
	// while the deploy runs. Default 30s.
	LockTTL time.Duration `yaml:"lock_ttl"`
	// LockPoll is how often a host waiting for a slot retries. Default 1s.
	LockPoll time.Duration `yaml:"lock_poll"`
	// Redis holds the rolling lock, the broken marks and the fleet state.
	Redis Redis `yaml:"redis"`
	// Serf is the embedded gossip member that counts live hosts and carries
	// "deploy" events.
	Serf Serf `yaml:"serf"`
	// SNSTopicARN, when set, receives every deploy event as JSON. Default ""
	// (events are only logged).
	SNSTopicARN string `yaml:"sns_topic_arn"`
	// MetricsListen, when set, serves Prometheus metrics at /metrics on this
	// address (e.g. "127.0.0.1:9106"). Default "" (no listener).
	MetricsListen string `yaml:"metrics_listen"`
	// LogFormat is "text" or "json". Default "text".
	LogFormat string `yaml:"log_format"`
	// CloudWatch is where the apps' alarms are read.
	CloudWatch CloudWatch `yaml:"cloudwatch"`
	// StateDir holds the host's own state files (puller/statedir), such as
	// the newest index Date accepted per app and dist. Must be absolute.
	// Default "/var/lib/aptfleet".
	StateDir string `yaml:"state_dir"`
	// BrokenAfter is how many distinct hosts must have a release failure
	// (installed and started, but the health check failed) on a version
	// before it is marked broken for the app/env. Until then the rollout
	// goes on one host at a time. Default 1: the first release failure
	// brands, since a host fault no longer does; at least 1.
	BrokenAfter int `yaml:"broken_after"`
	// RetryAfter is how long a host quarantined after a host fault (a
	// missing source, apt unable to fetch, a full disk, the dpkg lock, the
	// load balancer's API) waits before it tries again; it doubles with each
	// failure in a row, up to 16 times. Default 10m; at least 1s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// ForgetAfter: host records not rewritten for this long are dropped by
	// the next reader of the app/env's hosts (`puller status`, `pkgbuild
	// fleet`); a live host rewrites its record at every tick. Default 24h;
	// at least 1m.
	ForgetAfter time.Duration `yaml:"forget_after"`
}

// App is one application deployed on this host.
type App struct {
	// Name is the Debian package name. Required.
	Name string `yaml:"name"`
	// Env is the environment, e.g. "staging" or "production". Required.
	Env string `yaml:"env"`
	// Dist is the apt distribution the app is installed from. Default: Env.
	Dist string `yaml:"dist"`
	// Repo is the repository root: "s3://BUCKET/PREFIX", "https://HOST/PREFIX"
	// (any web server, read-only; "http://" too), or a local
	// directory (a path or file:///PATH). Required.
	Repo string `yaml:"repo"`
	// S3Endpoint is the base URL of an S3-compatible server. Default "": the
	// AWS SDK's (AWS_ENDPOINT_URL_S3, ...), else AWS itself.
	S3Endpoint string `yaml:"s3_endpoint"`
	// S3Region is the bucket's region. Default "": the SDK's (AWS_REGION, IMDS).
	S3Region string `yaml:"s3_region"`
	// Keyring is the OpenPGP public keyring that signs the repository.
	// Default "/etc/apt/keyrings/aptfleet.gpg".
	Keyring string `yaml:"keyring"`
	// Component is the repository component the app is installed from, the
	// one the apt source lists: the agent considers only its versions.
	// Default "main".
	Component string `yaml:"component"`
	// Arch is the Debian architecture read from the index. Default "amd64".
	Arch string `yaml:"arch"`
	// SourcesList is the apt source file of this app's repository, the only
	// one refreshed before an install. Default "/etc/apt/sources.list.d/aptfleet.sources".
	SourcesList string `yaml:"sources_list"`
	// Units are restarted after an install. Default: none listed, meaning
	// <name>.target and every installed <name>-*.service.
	Units []string `yaml:"units"`
	// NoUnits says the package runs no process (the repository's keyring
	// package, a command-line tool): it is installed under the lock like any
	// app, and nothing is restarted. Default false.
	NoUnits bool `yaml:"no_units"`
	// Health is the app's HTTP health check.
	Health Health `yaml:"health"`
	// Drain takes the host out of the load balancer around the restart.
	Drain Drain `yaml:"drain"`
	// Canary makes a new version prove itself on a few hosts before the
	// rest take it. Default: no canary stage.
	Canary Canary `yaml:"canary"`
	// Alarms are CloudWatch alarm names: any of them in ALARM during a
	// rollout halts it as a release failure. Default none. At most 100 (one
	// DescribeAlarms call).
	Alarms []string `yaml:"alarms"`
	// Window is the weekly window hosts start deploys in, e.g.
	// "Mon-Fri 08:00-17:00 Europe/Berlin" (see Window). Default "": always.
	// Bootstrap ignores it: a new instance installs the newest good version.
	Window string `yaml:"window"`
	// Validate is a command (run with /bin/sh -c, as the agent's user, root)
	// after the restart and before the health check; a non-zero exit is a
	// release failure. Default "" (none).
	Validate string `yaml:"validate"`
	// ValidateTimeout bounds the validate command. Default 2m.
	ValidateTimeout time.Duration `yaml:"validate_timeout"`
}

// Canary is the canary stage of a rollout: the first Hosts (or Percent of
// the live hosts) to take a slot for a new version deploy it and bake while
// every other host waits; then the rest roll on. Hosts and Percent are
// exclusive; setting neither turns the stage off.
type Canary struct {
	// Hosts is how many canaries. Default 0 (no canary stage, unless Percent).
	Hosts int `yaml:"hosts"`
	// Percent of the live hosts are canaries, rounded up, at least 1; in
	// (0, 100]. Default unset.
	Percent *float64 `yaml:"percent"`
	// Bake is how long the canaries serve the new version, with the
	// analysis running, before the stage can end. Default 0: the stage ends
	// as soon as the canaries are healthy, without analysis.
	Bake time.Duration `yaml:"bake"`
	// Promote is "auto" (the stage ends when the bake passes) or "manual"
	// (it then waits for an operator's promote-canary). Default "auto".
	Promote string `yaml:"promote"`
	// Analysis compares the canaries with the other servers of the backend
	// during the bake (HAProxy drain strategy only; see puller.Analyze).
	Analysis Analysis `yaml:"analysis"`
}

// Enabled reports whether the app has a canary stage.
func (c Canary) Enabled() bool { return c.Hosts > 0 || c.Percent != nil }

// Count is the number of canaries for alive live hosts: Hosts, or Percent of
// alive rounded up, at least 1 and at most alive (0 when the stage is off).
func (c Canary) Count(alive int) int {
	n := c.Hosts
	if c.Percent != nil {
		n = int(math.Ceil(*c.Percent*float64(alive)/100 - 1e-9))
	}
	if n > alive {
		n = alive
	}
	if c.Enabled() && n < 1 {
		n = 1
	}
	return n
}

// Analysis holds the thresholds of the canary analysis. Zero fields take
// their defaults.
type Analysis struct {
	// MaxErrorRate is the highest 5xx / requests the canaries may show.
	// Default 0.02.
	MaxErrorRate float64 `yaml:"max_error_rate"`
	// MaxErrorRateRatio is the highest canary error rate relative to the
	// baseline's (a baseline rate below 1/MinRequests counts as
	// 1/MinRequests). Default 2.0.
	MaxErrorRateRatio float64 `yaml:"max_error_rate_ratio"`
	// MaxLatencyRatio is the highest canary mean response time relative to
	// the baseline's. Default 1.5.
	MaxLatencyRatio float64 `yaml:"max_latency_ratio"`
	// MinRequests the canaries must serve during the bake; with fewer the
	// bake is extended once, then the canary fails. Default 200.
	MinRequests int `yaml:"min_requests"`
}

// CloudWatch is where the apps' alarms are read.
type CloudWatch struct {
	// Region of the alarms. Default "" (the SDK's default chain / IMDS).
	Region string `yaml:"region"`
	// Endpoint is the base URL of the CloudWatch API. Default "" (AWS).
	Endpoint string `yaml:"endpoint"`
	// Poll is how often the fleet reads the alarms during a rollout: one
	// DescribeAlarms call per app/env per Poll, shared by every host through
	// Redis. Default 30s; at least 1s.
	Poll time.Duration `yaml:"poll"`
}

// Health is an HTTP health check: Consecutive 2xx answers within Deadline.
type Health struct {
	// URL is checked with GET. Default "" (no health check: a restart that
	// leaves the units active counts as healthy).
	URL string `yaml:"url"`
	// Consecutive 2xx answers needed. Default 3.
	Consecutive int `yaml:"consecutive"`
	// Interval between requests. Default 1s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one request. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// Deadline for the whole check. Default 60s.
	Deadline time.Duration `yaml:"deadline"`
}

// Drain says how the host leaves and rejoins the load balancer.
type Drain struct {
	// Strategy is "none", "haproxy", "elbv2" or "command". Default "none".
	Strategy string `yaml:"strategy"`
	// Time is the longest wait for connections to drain. Default 30s.
	Time time.Duration `yaml:"time"`
	// HAProxy is used by the "haproxy" strategy.
	HAProxy HAProxy `yaml:"haproxy"`
	// ELBv2 is used by the "elbv2" strategy.
	ELBv2 ELBv2 `yaml:"elbv2"`
	// Command is used by the "command" strategy.
	Command DrainCommand `yaml:"command"`
}

// HAProxy addresses one server of an HAProxy backend through its runtime API.
type HAProxy struct {
	// Socket is the runtime API: a unix socket path or "tcp://HOST:PORT".
	// Default "/run/haproxy/admin.sock".
	Socket string `yaml:"socket"`
	// Backend is the backend name. Required for the haproxy strategy.
	Backend string `yaml:"backend"`
	// Server is the server name in the backend. Default: the host id.
	Server string `yaml:"server"`
}

// ELBv2 is an Application/Network Load Balancer target group.
type ELBv2 struct {
	// TargetGroupARN is the target group. Required for the elbv2 strategy.
	TargetGroupARN string `yaml:"target_group_arn"`
	// Port of the target; default 0 (the target group's port).
	Port int `yaml:"port"`
	// Region of the target group. Default "" (the SDK's default chain / IMDS).
	Region string `yaml:"region"`
}

// DrainCommand runs shell commands to drain and restore the host.
type DrainCommand struct {
	// Drain is run with /bin/sh -c before the install. Required for the command strategy.
	Drain string `yaml:"drain"`
	// Restore is run with /bin/sh -c after the host is healthy. Required for the command strategy.
	Restore string `yaml:"restore"`
}

// Redis is the connection to the Redis server holding the fleet's state.
type Redis struct {
	// Addr is HOST:PORT. Default "127.0.0.1:6379".
	Addr string `yaml:"addr"`
	// Username for Redis ACLs. Default "" (the default user).
	Username string `yaml:"username"`
	// Password (AUTH). Default "". Prefer PasswordFile.
	Password string `yaml:"password"`
	// PasswordFile holds the password (trailing newline ignored). Default "".
	PasswordFile string `yaml:"password_file"`
	// DB is the database number. Default 0.
	DB int `yaml:"db"`
	// TLS connects with TLS (ElastiCache in-transit encryption). Default false.
	TLS bool `yaml:"tls"`
	// TLSCAFile is a PEM bundle to verify the server with. Default "" (system roots).
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSServerName overrides the name verified in the server certificate. Default "" (the host of Addr).
	TLSServerName string `yaml:"tls_server_name"`
	// Prefix of every key. Default "aptfleet:".
	Prefix string `yaml:"prefix"`
}

// Serf is the embedded gossip member.
type Serf struct {
	// NodeName in the cluster. Default: the host id.
	NodeName string `yaml:"node_name"`
	// Bind is the gossip address. Default "0.0.0.0:7946".
	Bind string `yaml:"bind"`
	// Advertise is the address told to other members. Default "" (derived from Bind).
	Advertise string `yaml:"advertise"`
	// Join lists HOST:PORT of members to join at start. Default none (the
	// host waits for others to join it).
	Join []string `yaml:"join"`
	// EncryptKeyFile holds the base64 gossip key (16, 24 or 32 bytes). Default "" (no encryption).
	EncryptKeyFile string `yaml:"encrypt_key_file"`
}

// DefaultConfig returns the defaults of every field; Apps is empty.
func DefaultConfig() Config {
	return Config{
		Fraction: 0.25,
		Schedule: "@every 1m",
		Jitter:   20 * time.Second,
		LockTTL:  30 * time.Second,
		LockPoll: time.Second,
		Redis: Redis{
			Addr:   "127.0.0.1:6379",
			Prefix: "aptfleet:",
		},
		Serf:        Serf{Bind: "0.0.0.0:7946"},
		LogFormat:   "text",
		StateDir:    "/var/lib/aptfleet",
		CloudWatch:  CloudWatch{Poll: 30 * time.Second},
		BrokenAfter: 1,
		RetryAfter:  10 * time.Minute,
		ForgetAfter: 24 * time.Hour,
	}
}

// defaultApp fills an app's unset fields.
func defaultApp(a App) App {
	if a.Dist == "" {
		a.Dist = a.Env
	}
	if a.Keyring == "" {
		a.Keyring = "/etc/apt/keyrings/aptfleet.gpg"
	}
	if a.Arch == "" {
		a.Arch = "amd64"
	}
	if a.Component == "" {
		a.Component = "main"
	}
	if a.SourcesList == "" {
		a.SourcesList = "/etc/apt/sources.list.d/aptfleet.sources"
	}
	if a.Health.Consecutive == 0 {
		a.Health.Consecutive = 3
	}
	if a.Health.Interval == 0 {
		a.Health.Interval = time.Second
	}
	if a.Health.Timeout == 0 {
		a.Health.Timeout = 2 * time.Second
	}
	if a.Health.Deadline == 0 {
		a.Health.Deadline = 60 * time.Second
	}
	if a.Drain.Strategy == "" {
		a.Drain.Strategy = "none"
	}
	if a.Drain.Time == 0 {
		a.Drain.Time = 30 * time.Second
	}
	if a.Drain.HAProxy.Socket == "" {
		a.Drain.HAProxy.Socket = "/run/haproxy/admin.sock"
	}
	if a.ValidateTimeout == 0 {
		a.ValidateTimeout = 2 * time.Minute
	}
	if a.Canary.Promote == "" {
		a.Canary.Promote = PromoteAuto
	}
	an := &a.Canary.Analysis
	if an.MaxErrorRate == 0 {
		an.MaxErrorRate = 0.02
	}
	if an.MaxErrorRateRatio == 0 {
		an.MaxErrorRateRatio = 2.0
	}
	if an.MaxLatencyRatio == 0 {
		an.MaxLatencyRatio = 1.5
	}
	if an.MinRequests == 0 {
		an.MinRequests = 200
	}
	return a
}

// Promotion modes of a canary stage.
const (
	PromoteAuto   = "auto"
	PromoteManual = "manual"
)

// ErrConfig marks a configuration error.
var ErrConfig = errors.New("puller: bad config")

// ParseConfig decodes YAML over DefaultConfig, rejecting unknown keys, fills
// the per-app defaults and validates the result. name is only used in errors.
func ParseConfig(name string, r io.Reader) (Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Config{}, fmt.Errorf("read %s: %w", name, err)
	}
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("%s: %w: empty file", name, ErrConfig)
		}
		return Config{}, fmt.Errorf("%s: %w: %s", name, ErrConfig, oneLine(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")))
	}
	for i := range cfg.Apps {
		cfg.Apps[i] = defaultApp(cfg.Apps[i])
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

// Validate reports the first problem in c as an ErrConfig error naming the field.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if len(c.Apps) == 0 {
		return bad("apps: at least one app is required")
	}
	if !(c.Fraction > 0 && c.Fraction <= 1) {
		return bad("fraction: %v is outside (0, 1]", c.Fraction)
	}
	if _, err := ParseSchedule(c.Schedule); err != nil {
		return bad("schedule: %q: %s", c.Schedule, oneLine(err.Error()))
	}
	if c.Jitter < 0 {
		return bad("jitter: %s is negative", c.Jitter)
	}
	if c.LockTTL < 300*time.Millisecond {
		return bad("lock_ttl: %s is shorter than 300ms", c.LockTTL)
	}
	if c.LockPoll <= 0 {
		return bad("lock_poll: %s must be positive", c.LockPoll)
	}
	if c.Redis.Addr == "" {
		return bad("redis.addr: empty")
	}
	if c.Redis.Password != "" && c.Redis.PasswordFile != "" {
		return bad("redis: password and password_file are both set")
	}
	if !filepath.IsAbs(c.StateDir) {
		return bad("state_dir: %q is not an absolute path", c.StateDir)
	}
	if c.BrokenAfter < 1 {
		return bad("broken_after: %d is less than 1", c.BrokenAfter)
	}
	if c.RetryAfter < time.Second {
		return bad("retry_after: %s is shorter than 1s", c.RetryAfter)
	}
	if c.ForgetAfter < time.Minute {
		return bad("forget_after: %s is shorter than 1m", c.ForgetAfter)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return bad("log_format: %q is not text or json", c.LogFormat)
	}
	seen := map[string]bool{}
	for i, a := range c.Apps {
		field := fmt.Sprintf("apps[%d]", i)
		if !debian.ValidPackageName(a.Name) {
			return bad("%s.name: %q is not a Debian package name", field, a.Name)
		}
		if !debian.ValidDist(a.Env) { // an env is the default dist, so it is named like one
			return bad("%s.env: %q is not a valid environment name", field, a.Env)
		}
		if !debian.ValidDist(a.Dist) {
			return bad("%s.dist: %q is not a valid distribution name", field, a.Dist)
		}
		if a.Component != "" && !debian.ValidDist(a.Component) { // "" is the default, main
			return bad("%s.component: %v", field, debian.CheckDist(a.Component))
		}
		if a.Arch != "" && !debian.ValidArch(a.Arch) { // "" is the default, amd64
			return bad("%s.arch: %q is not a Debian architecture", field, a.Arch)
		}
		if a.Env != c.Apps[0].Env {
			return bad("%s.env: %q differs from apps[0].env %q (a host belongs to one environment)", field, a.Env, c.Apps[0].Env)
		}
		key := a.Name + "/" + a.Env
		if seen[key] {
			return bad("%s: %s is listed twice", field, key)
		}
		seen[key] = true
		if _, err := storeurl.Parse(a.Repo); err != nil {
			return bad("%s.repo: %s", field, err)
		}
		if a.Health.Consecutive < 1 {
			return bad("%s.health.consecutive: %d is less than 1", field, a.Health.Consecutive)
		}
		switch a.Drain.Strategy {
		case "none":
		case "haproxy":
			if a.Drain.HAProxy.Backend == "" {
				return bad("%s.drain.haproxy.backend: required by the haproxy strategy", field)
			}
		case "elbv2":
			if a.Drain.ELBv2.TargetGroupARN == "" {
				return bad("%s.drain.elbv2.target_group_arn: required by the elbv2 strategy", field)
			}
		case "command":
			if a.Drain.Command.Drain == "" || a.Drain.Command.Restore == "" {
				return bad("%s.drain.command: drain and restore are required by the command strategy", field)
			}
		default:
			return bad("%s.drain.strategy: %q is not none, haproxy, elbv2 or command", field, a.Drain.Strategy)
		}
		if err := a.validateGates(field); err != nil {
			return err
		}
	}
	if c.CloudWatch.Poll < time.Second {
		return bad("cloudwatch.poll: %s is shorter than 1s", c.CloudWatch.Poll)
	}
	return nil
}

// validateGates checks the canary, alarms, window and validate keys.
func (a App) validateGates(field string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s.%s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	c := a.Canary
	if c.Hosts < 0 {
		return bad("canary.hosts: %d is negative", c.Hosts)
	}
	if c.Percent != nil {
		if !(*c.Percent > 0 && *c.Percent <= 100) {
			return bad("canary.percent: %v is outside (0, 100]", *c.Percent)
		}
		if c.Hosts != 0 {
			return bad("canary: hosts and percent are both set")
		}
	}
	if c.Bake < 0 {
		return bad("canary.bake: %s is negative", c.Bake)
	}
	switch c.Promote {
	case PromoteAuto, PromoteManual:
	default:
		return bad("canary.promote: %q is not auto or manual", c.Promote)
	}
	an := c.Analysis
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"max_error_rate", an.MaxErrorRate}, {"max_error_rate_ratio", an.MaxErrorRateRatio},
		{"max_latency_ratio", an.MaxLatencyRatio}, {"min_requests", float64(an.MinRequests)},
	} {
		if f.v < 0 {
			return bad("canary.analysis.%s: %v is negative", f.name, f.v)
		}
	}
	if an.MaxErrorRate > 1 {
		return bad("canary.analysis.max_error_rate: %v is above 1", an.MaxErrorRate)
	}
	if !c.Enabled() && (c.Bake != 0 || c.Promote != PromoteAuto) {
		return bad("canary: bake or promote set without hosts or percent")
	}
	if len(a.Alarms) > 100 {
		return bad("alarms: %d names, at most 100", len(a.Alarms))
	}
	for i, name := range a.Alarms {
		if strings.TrimSpace(name) == "" {
			return bad("alarms[%d]: empty alarm name", i)
		}
	}
	if a.Window != "" {
		if _, err := ParseWindow(a.Window); err != nil {
			return bad("window: %s", err)
		}
	}
	if a.ValidateTimeout < 0 {
		return bad("validate_timeout: %s is negative", a.ValidateTimeout)
	}
	return nil
}

// ParseSchedule parses a robfig/cron standard spec ("*/5 * * * *", "@every 1m").
func ParseSchedule(spec string) (cron.Schedule, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("empty schedule")
	}
	return cron.ParseStandard(spec)
}

// oneLine folds a multi-line message (yaml.v3 lists every error on its own line).
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
