package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/internal/debian"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/apt"
	"github.com/aptfleet/aptfleet/puller/cloudwatch"
	"github.com/aptfleet/aptfleet/puller/gossip"
	"github.com/aptfleet/aptfleet/puller/health"
	"github.com/aptfleet/aptfleet/puller/hook"
	"github.com/aptfleet/aptfleet/puller/lb"
	"github.com/aptfleet/aptfleet/puller/redislock"
	"github.com/aptfleet/aptfleet/puller/redisstate"
	"github.com/aptfleet/aptfleet/puller/sns"
	"github.com/aptfleet/aptfleet/puller/statedir"
	"github.com/aptfleet/aptfleet/puller/systemd"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/storeurl"
)

// loadConfig reads and validates the configuration file.
func loadConfig(path string) (puller.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return puller.Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return puller.ParseConfig(path, f)
}

// newLogger builds the process logger in the configured format.
func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// hostID is the configured host id, else the EC2 instance id (IMDSv2), else
// the hostname.
func hostID(ctx context.Context, cfg puller.Config) (string, error) {
	if cfg.HostID != "" {
		return cfg.HostID, nil
	}
	if os.Getenv("AWS_EC2_METADATA_DISABLED") != "true" {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		out, err := imds.New(imds.Options{}).GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
		cancel()
		if err == nil {
			b, err := io.ReadAll(out.Content)
			out.Content.Close()
			if id := strings.TrimSpace(string(b)); err == nil && id != "" {
				return id, nil
			}
		}
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("host id: no instance metadata and no hostname: %w", err)
	}
	return h, nil
}

// connectRedis opens the client and checks it answers, so a wrong address or
// password fails at start with one line.
func connectRedis(ctx context.Context, c puller.Redis) (*redis.Client, error) {
	o := &redis.Options{Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB,
		DialTimeout: 3 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("redis.password_file: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	if c.TLS {
		host, _, _ := net.SplitHostPort(c.Addr)
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
		if c.TLSServerName != "" {
			o.TLSConfig.ServerName = c.TLSServerName
		}
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("redis.tls_ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("redis.tls_ca_file %s: no PEM certificate", c.TLSCAFile)
			}
			o.TLSConfig.RootCAs = pool
		}
	}
	rdb := redis.NewClient(o)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis %s: unreachable: %w", c.Addr, err)
	}
	return rdb, nil
}

// startGossip starts this host's Serf member tagged with its apps and env.
func startGossip(ctx context.Context, cfg puller.Config, host string, log *slog.Logger) (*gossip.Member, error) {
	gc := gossip.DefaultConfig()
	gc.NodeName = cfg.Serf.NodeName
	if gc.NodeName == "" {
		gc.NodeName = host
	}
	h, p, err := net.SplitHostPort(cfg.Serf.Bind)
	if err != nil {
		return nil, fmt.Errorf("serf.bind %q: %w", cfg.Serf.Bind, err)
	}
	gc.BindAddr = h
	if gc.BindPort, err = strconv.Atoi(p); err != nil {
		return nil, fmt.Errorf("serf.bind %q: bad port", cfg.Serf.Bind)
	}
	gc.AdvertiseAddr = cfg.Serf.Advertise
	gc.Join = cfg.Serf.Join
	if cfg.Serf.EncryptKeyFile != "" {
		if gc.EncryptKey, err = gossip.ReadKeyFile(cfg.Serf.EncryptKeyFile); err != nil {
			return nil, fmt.Errorf("serf.encrypt_key_file: %w", err)
		}
	} else {
		log.Warn("gossip is not encrypted (no serf.encrypt_key_file): any host that reaches the Serf port can join, raise the live count the deploy slots are sized from, and announce deploys",
			"bind", cfg.Serf.Bind)
	}
	names := make([]string, len(cfg.Apps))
	for i, a := range cfg.Apps {
		names[i] = a.Name
	}
	gc.Tags = map[string]string{gossip.TagApps: strings.Join(names, ","), gossip.TagEnv: cfg.Apps[0].Env}
	return gossip.Start(ctx, gc, log)
}

// liveHosts counts an app/env's hosts from their Redis records: the
// membership of `puller once` and `puller bootstrap`, which run beside the
// daemon's Serf member rather than as one.
type liveHosts struct {
	state  *redisstate.Store
	within time.Duration
}

func (l liveHosts) Alive(app, env string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := l.state.Status(ctx, app, env, l.within)
	if err != nil {
		return 1
	}
	n := 0
	for _, h := range st.Hosts {
		if h.Live {
			n++
		}
	}
	return max(n, 1)
}

// env is what the subcommands share once set up.
type env struct {
	cfg   puller.Config
	host  string
	log   *slog.Logger
	rdb   *redis.Client
	state *redisstate.Store
}

// setup loads the config, resolves the host id and connects to Redis.
func setup(ctx context.Context, opts *options) (*env, error) {
	cfg, err := loadConfig(opts.config)
	if err != nil {
		return nil, err
	}
	log := newLogger(cfg.LogFormat, opts.stderr)
	host, err := hostID(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rdb, err := connectRedis(ctx, cfg.Redis)
	if err != nil {
		return nil, err
	}
	state := redisstate.New(rdb, redisstate.Options{Prefix: cfg.Redis.Prefix, ForgetAfter: cfg.ForgetAfter})
	return &env{cfg: cfg, host: host, log: log, rdb: rdb, state: state}, nil
}

// agent builds the agent with the real host steps. members counts live hosts
// (the Serf member under `run`); tagger may be nil.
func (e *env) agent(ctx context.Context, members puller.Membership, tagger puller.VersionTagger) (*puller.Agent, error) {
	deps := puller.Deps{
		Lock: redislock.New(e.rdb, redislock.Options{
			Prefix: e.cfg.Redis.Prefix, TTL: e.cfg.LockTTL, PollEvery: e.cfg.LockPoll, Logger: e.log,
		}),
		State: e.state, Canaries: e.state, Members: members, Tagger: tagger,
		Compare: debian.CompareVersions, Logger: e.log,
	}
	marks, err := statedir.OpenMarks(e.cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	deps.Marks = marks
	var sdk *awsLazy
	for _, a := range e.cfg.Apps {
		ad, err := e.appDeps(ctx, a, &sdk)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", a.Name, err)
		}
		deps.Apps = append(deps.Apps, ad)
	}
	if e.cfg.SNSTopicARN != "" {
		c, err := lazyAWS(ctx, &sdk, "")
		if err != nil {
			return nil, err
		}
		p, err := sns.New(awssns.NewFromConfig(c.cfg), e.cfg.SNSTopicARN)
		if err != nil {
			return nil, fmt.Errorf("sns_topic_arn: %w", err)
		}
		deps.Publisher = p
	}
	return puller.New(e.cfg, e.host, deps)
}

func (e *env) appDeps(ctx context.Context, a puller.App, sdk **awsLazy) (puller.AppDeps, error) {
	store, err := storeurl.Open(ctx, a.Repo, storeurl.Options{Endpoint: a.S3Endpoint, Region: a.S3Region})
	if err != nil {
		return puller.AppDeps{}, fmt.Errorf("repo: %w", err)
	}
	kr, err := repo.LoadKeyring(a.Keyring)
	if err != nil {
		return puller.AppDeps{}, err
	}
	ac := apt.DefaultConfig()
	ac.SourcesList = a.SourcesList
	ac.Logger = e.log
	sc := systemd.DefaultConfig()
	if len(a.Units) > 0 {
		sc.Units = map[string][]string{a.Name: a.Units}
	}
	dates, err := statedir.OpenDates(e.cfg.StateDir)
	if err != nil {
		return puller.AppDeps{}, fmt.Errorf("state_dir: %w", err)
	}
	d := puller.AppDeps{
		Index:     puller.RepoIndex{Reader: &repo.Reader{Store: store, Keyring: kr, Architecture: a.Arch, Components: []string{a.Component}}, App: a.Name, Dates: dates},
		Installer: apt.New(ac),
		Restarter: systemd.New(sc),
	}
	if a.Health.URL != "" {
		c, err := health.New(health.Config{URL: a.Health.URL, Consecutive: a.Health.Consecutive,
			Interval: a.Health.Interval, Timeout: a.Health.Timeout, Deadline: a.Health.Deadline})
		if err != nil {
			return d, fmt.Errorf("health: %w", err)
		}
		d.Checker = c
	}
	if a.Validate != "" {
		d.Validator = &hook.Command{Command: a.Validate, Timeout: a.ValidateTimeout}
	}
	switch dr := a.Drain; dr.Strategy {
	case "haproxy":
		server := dr.HAProxy.Server
		if server == "" {
			server = e.host
		}
		h, err := lb.NewHAProxy(lb.HAProxyConfig{Socket: dr.HAProxy.Socket, Backend: dr.HAProxy.Backend,
			Server: server, DrainTime: dr.Time, Logger: e.log})
		if err != nil {
			return d, fmt.Errorf("drain: %w", err)
		}
		d.Drainer = h
		d.LoadStats = h // the canary analysis reads the same backend's counters
	case "elbv2":
		c, err := lazyAWS(ctx, sdk, dr.ELBv2.Region)
		if err != nil {
			return d, err
		}
		x, err := lb.NewELBv2(lb.ELBv2Config{TargetGroupARN: dr.ELBv2.TargetGroupARN, Port: int32(dr.ELBv2.Port),
			DrainTime: dr.Time, Logger: e.log}, elb.NewFromConfig(c.cfg), imds.NewFromConfig(c.cfg))
		if err != nil {
			return d, fmt.Errorf("drain: %w", err)
		}
		d.Drainer = x
	case "command":
		x, err := lb.NewCommand(lb.CommandConfig{Drain: dr.Command.Drain, Restore: dr.Command.Restore, Wait: dr.Time})
		if err != nil {
			return d, fmt.Errorf("drain: %w", err)
		}
		d.Drainer = x
	}
	if len(a.Alarms) > 0 {
		// One DescribeAlarms per cloudwatch.poll for the whole fleet of the
		// app/env, shared through Redis.
		c, err := lazyAWS(ctx, sdk, e.cfg.CloudWatch.Region)
		if err != nil {
			return d, err
		}
		shared, err := cloudwatch.NewShared(e.rdb, cloudwatch.New(c.cfg, e.cfg.CloudWatch.Endpoint), cloudwatch.SharedOptions{
			Prefix: e.cfg.Redis.Prefix, App: a.Name, Env: a.Env, Host: e.host, Every: e.cfg.CloudWatch.Poll})
		if err != nil {
			return d, fmt.Errorf("alarms: %w", err)
		}
		d.AlarmReader = shared
	}
	return d, nil
}

// awsLazy loads the AWS SDK configuration only when something needs it.
type awsLazy struct {
	cfg aws.Config
}

func lazyAWS(ctx context.Context, p **awsLazy, region string) (*awsLazy, error) {
	if *p != nil && region == "" {
		return *p, nil
	}
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	c, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	l := &awsLazy{cfg: c}
	if region == "" {
		*p = l
	}
	return l, nil
}

// oneShot is the RunE of a command that sets up, builds the agent sized from
// the hosts' Redis records (the daemon's Serf member owns the gossip port),
// and makes one call of it: `once`, `bootstrap`.
func oneShot(opts *options, call func(a *puller.Agent, ctx context.Context) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		e, err := setup(ctx, opts)
		if err != nil {
			return err
		}
		defer e.rdb.Close()
		a, err := e.agent(ctx, liveHosts{state: e.state, within: 10 * time.Minute}, nil)
		if err != nil {
			return err
		}
		return call(a, ctx)
	}
}
