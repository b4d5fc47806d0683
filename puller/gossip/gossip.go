// Package gossip is the puller's embedded Serf member: it tells the agent how
// many live hosts run an app in an environment (the rolling lock's cap is a
// fraction of that) and delivers "deploy" user events, so a publish reaches the
// fleet in about a second instead of at the next cron tick.
//
// Every agent is one Serf node named after its instance id, tagged with
//
//	apps     comma-separated app names
//	env      the environment (staging, production...)
//	v.<app>  the version of <app> running on the host
//
// Announce is the sending side used by `pkgbuild publish|promote --announce`:
// it joins, fires one "deploy" event with payload "<app>/<env>" and leaves.
package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/aptfleet/aptfleet/puller"
)

var (
	_ puller.Membership    = (*Member)(nil)
	_ puller.VersionTagger = (*Member)(nil)
)

// EventDeploy is the Serf user event that triggers a deploy check.
const EventDeploy = "deploy"

// Tag names.
const (
	TagApps          = "apps"
	TagEnv           = "env"
	TagVersionPrefix = "v."
)

// Config configures a Member.
type Config struct {
	// NodeName is the instance id (required; unique in the cluster).
	NodeName string
	// BindAddr is the address Serf listens on (TCP and UDP). Default "0.0.0.0".
	BindAddr string
	// BindPort is the port Serf listens on. Default 7946; 0 picks a free port.
	BindPort int
	// AdvertiseAddr is the address other members reach this one at. Default: the
	// bind address, or the first private address when binding 0.0.0.0.
	AdvertiseAddr string
	// Join lists members to join ("host" or "host:port", port 7946 when omitted).
	// Empty: start a cluster of one and wait for others to join. When none
	// answers, joining is retried every RetryJoin until one does.
	Join []string
	// EncryptKey is the AES key (16, 24 or 32 bytes) gossip is encrypted with;
	// every member and sender must use the same one. Default none.
	EncryptKey []byte
	// Tags of this member: apps, env and v.<app> (see the package comment).
	Tags map[string]string
	// RetryJoin is how often joining is retried while no join address answered.
	// Default 10s.
	RetryJoin time.Duration
	// Timing of the gossip and failure detection. Zero fields keep memberlist's
	// LAN defaults.
	Timing Timing
}

// Timing holds the gossip timers. Zero fields keep the LAN defaults noted.
type Timing struct {
	GossipInterval   time.Duration // 200ms: how often to gossip to GossipNodes (3) random members
	ProbeInterval    time.Duration // 1s: how often to probe a random member
	ProbeTimeout     time.Duration // 500ms: how long a probe waits for its ack
	SuspicionMult    int           // 4: a suspect is declared failed after SuspicionMult*log10(N+1)*ProbeInterval
	PushPullInterval time.Duration // 30s: full state sync with a random member
	ReapInterval     time.Duration // 15s: how often failed and left members are reaped
	// LeavePropagateDelay is how long Leave waits for the leave to spread. 1s.
	LeavePropagateDelay time.Duration
	// BroadcastTimeout bounds how long Leave waits for its broadcast. 5s.
	BroadcastTimeout time.Duration
}

// FastTiming shrinks the timers for clusters on loopback (tests): failures are
// detected in about a second, with probe deadlines loose enough for a loaded
// test machine.
func FastTiming() Timing {
	return Timing{
		GossipInterval: 20 * time.Millisecond, ProbeInterval: 250 * time.Millisecond,
		ProbeTimeout: 200 * time.Millisecond, SuspicionMult: 3, PushPullInterval: 2 * time.Second,
		ReapInterval: time.Second, LeavePropagateDelay: 50 * time.Millisecond, BroadcastTimeout: time.Second,
	}
}

// DefaultConfig returns the defaults: bind 0.0.0.0:7946, LAN timers.
func DefaultConfig() Config {
	return Config{BindAddr: "0.0.0.0", BindPort: 7946, RetryJoin: 10 * time.Second}
}

// Deploy is a received "deploy" event.
type Deploy struct {
	App, Env string
	LTime    uint64 // Serf's Lamport time of the event
}

// Member is this host's Serf node.
type Member struct {
	serf    *serf.Serf
	log     *slog.Logger
	deploys chan Deploy
	leaves  chan Left

	mu   sync.Mutex
	tags map[string]string

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// ErrBadPayload is returned for a deploy payload that is not "<app>/<env>".
var ErrBadPayload = errors.New("gossip: deploy payload is not <app>/<env>")

// Start creates the member and joins the cluster. ctx bounds the first join
// attempt only; when no join address answers, joining continues in the
// background (the member counts only itself meanwhile).
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Member, error) {
	if logger == nil {
		logger = slog.Default()
	}
	sc, err := serfConfig(cfg, logger)
	if err != nil {
		return nil, err
	}
	events := make(chan serf.Event, 256)
	sc.EventCh = events
	s, err := serf.Create(sc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start member %s on %s:%d: %w", cfg.NodeName, cfg.BindAddr, cfg.BindPort, err)
	}
	m := &Member{serf: s, log: logger, deploys: make(chan Deploy, 64), leaves: make(chan Left, 64), tags: maps.Clone(sc.Tags), stop: make(chan struct{})}
	m.wg.Add(1)
	go m.handle(events)
	if len(cfg.Join) > 0 {
		if err := m.join(ctx, cfg.Join); err != nil {
			logger.Warn("gossip: join failed, retrying in the background", "join", cfg.Join, "err", err)
			retry := cfg.RetryJoin
			if retry <= 0 {
				retry = DefaultConfig().RetryJoin
			}
			m.wg.Add(1)
			go m.retryJoin(cfg.Join, retry)
		}
	}
	return m, nil
}

func serfConfig(cfg Config, logger *slog.Logger) (*serf.Config, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("gossip: node name (instance id) is empty")
	}
	switch len(cfg.EncryptKey) {
	case 0, 16, 24, 32:
	default:
		return nil, fmt.Errorf("gossip: encrypt key is %d bytes, want 16, 24 or 32", len(cfg.EncryptKey))
	}
	if cfg.BindAddr == "" {
		cfg.BindAddr = DefaultConfig().BindAddr
	}
	ll := log.New(&logWriter{log: logger}, "", 0)
	sc := serf.DefaultConfig()
	sc.NodeName = cfg.NodeName
	sc.Tags = maps.Clone(cfg.Tags)
	if sc.Tags == nil {
		sc.Tags = map[string]string{}
	}
	sc.Logger = ll
	sc.LogOutput = nil
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertisePort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	if cfg.AdvertiseAddr == "" && cfg.BindAddr != "0.0.0.0" && cfg.BindAddr != "::" {
		mc.AdvertiseAddr = cfg.BindAddr
	}
	mc.SecretKey = cfg.EncryptKey
	mc.Logger = ll
	mc.LogOutput = nil
	t := cfg.Timing
	setDur(&mc.GossipInterval, t.GossipInterval)
	setDur(&mc.ProbeInterval, t.ProbeInterval)
	setDur(&mc.ProbeTimeout, t.ProbeTimeout)
	setDur(&mc.PushPullInterval, t.PushPullInterval)
	if t.SuspicionMult > 0 {
		mc.SuspicionMult = t.SuspicionMult
	}
	setDur(&sc.ReapInterval, t.ReapInterval)
	setDur(&sc.LeavePropagateDelay, t.LeavePropagateDelay)
	setDur(&sc.BroadcastTimeout, t.BroadcastTimeout)
	sc.MemberlistConfig = mc
	return sc, nil
}

func setDur(dst *time.Duration, v time.Duration) {
	if v > 0 {
		*dst = v
	}
}

func (m *Member) join(ctx context.Context, addrs []string) error {
	done := make(chan error, 1)
	go func() {
		_, err := m.serf.Join(withPorts(addrs), true) // ignore deploy events from before we joined
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Member) retryJoin(addrs []string, every time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		if _, err := m.serf.Join(withPorts(addrs), true); err == nil {
			m.log.Info("gossip: joined", "join", addrs)
			return
		}
	}
}

// withPorts adds the default port to addresses without one.
func withPorts(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(strings.Trim(a, "[]"), strconv.Itoa(DefaultConfig().BindPort))
		}
		out = append(out, a)
	}
	return out
}

func (m *Member) handle(events <-chan serf.Event) {
	defer m.wg.Done()
	var dropped bool
	for {
		var ev serf.Event
		select {
		case <-m.stop:
			return
		case ev = <-events:
		}
		if me, ok := ev.(serf.MemberEvent); ok && me.Type == serf.EventMemberLeave {
			for _, mem := range me.Members {
				l := Left{Node: mem.Name, Env: mem.Tags[TagEnv]}
				if apps := mem.Tags[TagApps]; apps != "" {
					l.Apps = strings.Split(apps, ",")
				}
				select {
				case m.leaves <- l:
				default:
					m.log.Warn("gossip: leave events pile up; dropping", "node", l.Node)
				}
			}
			continue
		}
		ue, ok := ev.(serf.UserEvent)
		if !ok || ue.Name != EventDeploy {
			continue
		}
		app, env, err := ParsePayload(string(ue.Payload))
		if err != nil {
			m.log.Warn("gossip: ignoring deploy event", "payload", string(ue.Payload), "err", err)
			continue
		}
		select {
		case m.deploys <- Deploy{App: app, Env: env, LTime: uint64(ue.LTime)}:
			dropped = false
		default: // the agent has not taken the previous ones yet; one pending check is enough
			if !dropped {
				m.log.Warn("gossip: deploy events pile up; dropping until the agent catches up")
				dropped = true
			}
		}
	}
}

// ParsePayload splits a deploy payload "<app>/<env>".
func ParsePayload(p string) (app, env string, err error) {
	app, env, ok := strings.Cut(p, "/")
	if !ok || app == "" || env == "" || strings.Contains(env, "/") {
		return "", "", fmt.Errorf("%w: %q", ErrBadPayload, p)
	}
	return app, env, nil
}

// Left is a member that left the cluster gracefully (not one that failed),
// with the apps and env it was tagged with.
type Left struct {
	Node string
	Apps []string
	Env  string
}

// Leaves delivers the members that leave the cluster gracefully.
func (m *Member) Leaves() <-chan Left { return m.leaves }

// Deploys delivers the "deploy" events this member receives.
func (m *Member) Deploys() <-chan Deploy { return m.deploys }

// Alive counts the alive members (this one included) tagged with app and env.
func (m *Member) Alive(app, env string) int {
	n := 0
	for _, mem := range m.serf.Members() {
		if mem.Status == serf.StatusAlive && runs(mem.Tags, app, env) {
			n++
		}
	}
	return n
}

// Versions maps each alive member tagged with app and env to its v.<app> tag
// ("" when it has none yet).
func (m *Member) Versions(app, env string) map[string]string {
	out := map[string]string{}
	for _, mem := range m.serf.Members() {
		if mem.Status == serf.StatusAlive && runs(mem.Tags, app, env) {
			out[mem.Name] = mem.Tags[TagVersionPrefix+app]
		}
	}
	return out
}

func runs(tags map[string]string, app, env string) bool {
	if tags[TagEnv] != env {
		return false
	}
	for _, a := range strings.Split(tags[TagApps], ",") {
		if strings.TrimSpace(a) == app {
			return true
		}
	}
	return false
}

// SetVersion sets this member's v.<app> tag and gossips it.
func (m *Member) SetVersion(app, version string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tags := maps.Clone(m.tags)
	tags[TagVersionPrefix+app] = version
	if err := m.serf.SetTags(tags); err != nil {
		return fmt.Errorf("gossip: set tag %s%s=%s: %w", TagVersionPrefix, app, version, err)
	}
	m.tags = tags
	return nil
}

// Addr is the address other members reach this one at (host:port).
func (m *Member) Addr() string {
	n := m.serf.Memberlist().LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Leave tells the cluster this member is going away, then shuts it down. ctx
// bounds the wait for the leave to spread; the member is shut down either way.
func (m *Member) Leave(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- m.serf.Leave() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if serr := m.shutdown(); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	return nil
}

func (m *Member) shutdown() error {
	err := m.serf.Shutdown()
	m.stopOnce.Do(func() { close(m.stop) })
	m.wg.Wait()
	return err
}

// Announce joins the cluster through join, fires one "deploy" event for app and
// env, waits until this node has gossiped it its full number of times, and
// leaves. The
// temporary node carries no app tags, so it never counts as a host.
func Announce(ctx context.Context, join []string, encryptKey []byte, app, env string) error {
	if _, _, err := ParsePayload(app + "/" + env); err != nil {
		return err
	}
	if len(join) == 0 {
		return errors.New("gossip: announce: no address to join")
	}
	addrs := withPorts(join)
	local, err := localAddrFor(addrs[0])
	if err != nil {
		return fmt.Errorf("gossip: announce: route to %s: %w", addrs[0], err)
	}
	cfg := DefaultConfig()
	cfg.NodeName = fmt.Sprintf("announce-%s-%d", local, time.Now().UnixNano())
	cfg.BindAddr = local
	cfg.BindPort = 0
	cfg.EncryptKey = encryptKey
	cfg.Tags = map[string]string{"role": "announce"}
	sc, err := serfConfig(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	// The sender fans out wider and faster than a member. On joining it learns
	// every member, and memberlist re-gossips each one's alive state before any
	// user event gets room in a packet: with a member's timers (3 nodes every
	// 200ms, 4 x log10(N+1) sends each) that delays the event by seconds in a
	// cluster of 100. Members spread the event on with their own timers.
	sc.MemberlistConfig.GossipInterval = 50 * time.Millisecond
	sc.MemberlistConfig.GossipNodes = 20
	sc.MemberlistConfig.RetransmitMult = 2
	s, err := serf.Create(sc)
	if err != nil {
		return fmt.Errorf("gossip: announce: start: %w", err)
	}
	defer s.Shutdown()
	joined := make(chan error, 1)
	go func() {
		_, err := s.Join(addrs, true)
		joined <- err
	}()
	select {
	case err = <-joined:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("gossip: announce: join %s: %w", strings.Join(join, ","), err)
	}
	if err := s.UserEvent(EventDeploy, []byte(app+"/"+env), true); err != nil {
		return fmt.Errorf("gossip: announce %s/%s: %w", app, env, err)
	}
	// Wait until gossip has sent it its full number of times.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.Stats()["event_queue"] != "0" {
		select {
		case <-ctx.Done():
			return fmt.Errorf("gossip: announce %s/%s: %w", app, env, ctx.Err())
		case <-tick.C:
		}
	}
	left := make(chan error, 1)
	go func() { left <- s.Leave() }()
	select {
	case err = <-left:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("gossip: announce: leave: %w", err)
	}
	return nil
}

// localAddrFor returns the local IP the kernel would use to reach addr.
func localAddrFor(addr string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// logWriter turns Serf's and memberlist's "[LEVEL] text" lines into slog records.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	for prefix, l := range map[string]slog.Level{"[ERR]": slog.LevelError, "[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelInfo} {
		if strings.HasPrefix(line, prefix) {
			level = l
			line = strings.TrimSpace(strings.TrimPrefix(line, prefix))
			break
		}
	}
	line = strings.TrimSpace(strings.TrimPrefix(line, "[DEBUG]"))
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
