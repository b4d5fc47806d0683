//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/instance"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/lb"
	"github.com/aptfleet/aptfleet/puller/redisstate"
	"github.com/aptfleet/aptfleet/userdata"
)

// The fleet's fixed names.
const (
	app       = "hello"
	env       = "production"
	bucket    = "fleetrepo"
	prefix    = "apt"
	topicARN  = "arn:aws:sns:us-east-1:123456789012:aptfleet-e2e"
	fraction  = 1.0 / 3
	schedule  = "@every 10s"
	pullerVer = "0.9.0-1"
)

// slot is one instance the fleet can boot: its name (the host id) and ports,
// fixed up front so HAProxy and the Serf join lists know them all.
type slot struct {
	name     string
	appPort  int
	serfPort int
}

// fleet is everything the scenario runs on.
type fleet struct {
	t    *testing.T
	ctx  context.Context
	src  string // module root
	work string
	base string // debootstrapped root the instances boot

	pkgbuild string // binary built from this tree
	keyFile  string // armored signing key
	keyring  []byte // binary public keyring
	serfKey  string // the fleet's base64 gossip key, in every user-data
	serfFile string // the same key in a file, for pkgbuild's announce

	s3    *s3server.Server
	rds   *testenv.Redis
	rdb   *redis.Client
	state *redisstate.Store
	lb    *testenv.HAProxy
	sns   *snsCapture
	load  *loadGen
	tl    *timeline

	slots   []slot
	servers map[string]*lb.HAProxy // each slot's server, through HAProxy's runtime API
	mu      sync.Mutex
	insts   map[string]*instance.Instance
}

// newFleet starts the shared services: S3, Redis, HAProxy (every slot a
// disabled server), the SNS stand-in, and builds the pkgbuild command.
func newFleet(t *testing.T, ctx context.Context, nslots int, tl *timeline) *fleet {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "redis-server", "haproxy", "go")
	base := testenv.TestRoot(t)
	// Tests run in their package's directory, two below the module root.
	src, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, ctx: ctx, src: src, work: t.TempDir(), base: base, tl: tl, insts: map[string]*instance.Instance{}}

	f.pkgbuild = filepath.Join(f.work, "bin", "pkgbuild")
	f.goBuild(f.pkgbuild, "./cmd/pkgbuild", "dev")
	f.keyFile = filepath.Join(f.work, "signing.asc")
	pub := filepath.Join(f.work, "repo.gpg")
	f.run(f.pkgbuild, "key", "generate", "--out", f.keyFile, "--public", pub, "--name", "aptfleet e2e")
	if f.keyring, err = os.ReadFile(pub); err != nil {
		t.Fatal(err)
	}
	// Gossip is encrypted, as user-data requires by default: the instances
	// get the key inline (no SSM here), CI's announce reads it from a file.
	gossipKey := make([]byte, 32)
	rand.Read(gossipKey)
	f.serfKey = base64.StdEncoding.EncodeToString(gossipKey)
	f.serfFile = filepath.Join(f.work, "serf.key")
	if err := os.WriteFile(f.serfFile, []byte(f.serfKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	f.s3 = s3server.Versitygw(t, s3server.VersitygwOptions{Bucket: bucket, TLS: true, VirtualHost: true})
	f.rds = testenv.StartRedis(t, testenv.RedisOptions{})
	f.rdb = redis.NewClient(&redis.Options{Addr: f.rds.Addr})
	t.Cleanup(func() { f.rdb.Close() })
	f.state = redisstate.New(f.rdb, redisstate.Options{})
	f.sns = newSNSCapture(t, tl)

	var servers []testenv.HAProxyServer
	for i := 1; i <= nslots; i++ {
		s := slot{name: fmt.Sprintf("i-0e2e%04d", i), appPort: testenv.FreePort(t), serfPort: testenv.FreePort(t)}
		f.slots = append(f.slots, s)
		servers = append(servers, testenv.HAProxyServer{Name: s.name, Addr: fmt.Sprintf("127.0.0.1:%d", s.appPort), Disabled: true})
	}
	f.lb = testenv.StartHAProxy(t, testenv.HAProxyOptions{Backend: app, Servers: servers, Check: true, CheckPath: "/healthz"})
	f.servers = map[string]*lb.HAProxy{}
	for _, s := range f.slots {
		h, err := lb.NewHAProxy(lb.HAProxyConfig{Socket: "tcp://" + f.lb.TCPSocket, Backend: app, Server: s.name,
			RestoreTimeout: time.Minute, Poll: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		f.servers[s.name] = h
	}
	tl.add("services up: versitygw %s (TLS, virtual-host bucket %s), redis %s, haproxy %s, SNS stand-in %s",
		f.s3.Addr, bucket, f.rds.Addr, f.lb.Frontend, f.sns.url)
	return f
}

// goBuild compiles pkg of this module to out with main.version stamped and
// any further -X ldflags.
func (f *fleet) goBuild(out, pkg, version string, ldflags ...string) {
	f.t.Helper()
	flags := "-s -w -X main.version=" + version + " " + strings.Join(ldflags, " ")
	cmd := exec.CommandContext(f.ctx, "go", "build", "-trimpath", "-ldflags", flags, "-o", out, pkg)
	cmd.Dir = f.src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		f.t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// run runs a command on the machine and returns its output, failing the
// test on error.
func (f *fleet) run(name string, args ...string) string {
	f.t.Helper()
	cmd := exec.CommandContext(f.ctx, name, args...)
	cmd.Env = f.toolEnv()
	b, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, b)
	}
	return string(b)
}

// toolEnv is the environment of the commands CI would run: the S3 server's
// keys and CA, the signing key.
func (f *fleet) toolEnv() []string {
	// CI runs under Jenkins: its changes are recorded with the build as
	// their actor, in the fleet's history when Redis is given.
	env := append(os.Environ(), "APTFLEET_SIGNING_KEY_FILE="+f.keyFile, "BUILD_USER="+ciUser, "BUILD_URL="+ciURL)
	if f.s3 != nil {
		env = append(env, "AWS_ACCESS_KEY_ID="+f.s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+f.s3.SecretKey,
			"AWS_REGION="+f.s3.Region, "AWS_CA_BUNDLE="+f.s3.CAFile, "AWS_EC2_METADATA_DISABLED=true")
	}
	return env
}

// repoArgs address the repository as CI does, path-style over TLS.
func (f *fleet) repoArgs() []string {
	return []string{"--repo", "s3://" + bucket + "/" + prefix, "--endpoint", "https://" + f.s3.Addr}
}

// buildPackage builds the .deb of the spec in specDir (copied, so the tree
// stays clean) with the binary of pkg at binPath relative to the spec.
func (f *fleet) buildPackage(name, specDir, pkg, binPath, version string, ldflags ...string) string {
	f.t.Helper()
	dst := filepath.Join(f.work, "src", name+"-"+version, "spec")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.run("cp", "-a", filepath.Join(f.src, specDir)+"/.", dst+"/")
	f.goBuild(filepath.Join(dst, binPath), pkg, version, ldflags...)
	out := filepath.Join(f.work, "dist")
	deb := strings.TrimSpace(f.run(f.pkgbuild, "build", "--spec", filepath.Join(dst, "package.yaml"), "--version", version, "--out", out))
	return deb
}

// hello builds hello at version; a health status other than 200 makes a
// release that fails its health check.
func (f *fleet) hello(version string, health int) string {
	var ld []string
	if health != 200 {
		ld = append(ld, fmt.Sprintf("-X main.healthStatus=%d", health))
	}
	return f.buildPackage(app, "examples/hello", "./examples/hello", "bin/hello", version, ld...)
}

// publish puts debs into staging, as CI does on a green main.
func (f *fleet) publish(debs ...string) {
	f.t.Helper()
	args := append(append([]string{"publish"}, f.repoArgs()...), "--dist", "staging")
	f.run(f.pkgbuild, append(args, debs...)...)
	names := make([]string, len(debs))
	for i, d := range debs {
		names[i] = filepath.Base(d)
	}
	f.tl.add("pkgbuild publish --dist staging %s", strings.Join(names, " "))
}

// promote copies refs from staging to production and announces them through
// the Serf member at announce (none when empty). It returns the time the
// command started: hosts may start deploying before it returns, since the
// announce waits until the event has been gossiped.
func (f *fleet) promote(announce string, refs ...string) time.Time {
	f.t.Helper()
	args := append(append([]string{"promote"}, f.repoArgs()...), "--from", "staging", "--to", env, "--redis", "redis://"+f.rds.Addr)
	args = append(args, f.snsFlags()...)
	if announce != "" {
		args = append(args, "--announce", announce, "--announce-key-file", f.serfFile)
	}
	at := time.Now()
	f.run(f.pkgbuild, append(args, refs...)...)
	how := ""
	if announce != "" {
		how = " (deploy event through " + announce + ")"
	}
	f.tl.add("pkgbuild promote --from staging --to %s %s%s", env, strings.Join(refs, " "), how)
	return at
}

// userData renders the slot's user-data: everything the instance learns
// about the fleet comes from it.
func (f *fleet) userData(s slot) []byte {
	f.t.Helper()
	ca, err := os.ReadFile(f.s3.CAFile)
	if err != nil {
		f.t.Fatal(err)
	}
	_, s3Port, _ := net.SplitHostPort(f.s3.Addr)
	cfg := userdata.DefaultConfig()
	cfg.App, cfg.Env = app, env
	cfg.Repo = "s3://" + bucket + "/" + prefix
	cfg.Keyring = f.keyring
	cfg.Region = f.s3.Region
	cfg.S3Endpoint = "s3.test:" + s3Port
	cfg.CABundle = string(ca)
	cfg.AccessKeyID, cfg.SecretAccessKey = f.s3.AccessKey, f.s3.SecretKey
	cfg.RedisAddr = f.rds.Addr
	cfg.RedisTLS = false // the test's redis-server listens without TLS
	cfg.SerfKey = f.serfKey
	cfg.SerfBind = fmt.Sprintf("127.0.0.1:%d", s.serfPort)
	for _, o := range f.slots {
		if o.name != s.name {
			cfg.SerfJoin = append(cfg.SerfJoin, fmt.Sprintf("127.0.0.1:%d", o.serfPort))
		}
	}
	cfg.AppPort = s.appPort
	cfg.HAProxySocket = "tcp://" + f.lb.TCPSocket
	cfg.HAProxyBackend = app
	cfg.SNSTopicARN = topicARN
	cfg.SNSEndpoint = f.sns.url
	cfg.Fraction = fraction
	cfg.Schedule = schedule
	script, err := userdata.Render(cfg)
	if err != nil {
		f.t.Fatalf("render user-data for %s: %v", s.name, err)
	}
	return script
}

// boot launches the slot's instance, as Auto Scaling would, and waits until
// its user-data finished. It does not put the instance in service.
func (f *fleet) boot(s slot) (*instance.Instance, error) {
	start := time.Now()
	script := f.userData(s)
	f.tl.add("%s: launching (user-data %d bytes)", s.name, len(script))
	inst, err := instance.Boot(f.ctx, f.base, instance.Options{
		Name:     s.name,
		Dir:      filepath.Join(f.work, "instances", s.name),
		UserData: script,
		// What the EC2 environment provides: DNS for the bucket's virtual
		// host. The instances share the machine's network, so each hello
		// gets its own port through its conffile, which the install keeps.
		Files: map[string][]byte{
			"/etc/hosts":         fmt.Appendf(nil, "127.0.0.1 localhost %s\n127.0.0.1 s3.test %s.s3.test\n", s.name, bucket),
			"/etc/default/hello": fmt.Appendf(nil, "PORT=%d\n", s.appPort),
		},
	})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.insts[s.name] = inst
	f.mu.Unlock()
	f.t.Cleanup(func() { inst.Close() })
	bctx, cancel := context.WithTimeout(f.ctx, 10*time.Minute)
	defer cancel()
	if err := inst.WaitSystemRunning(bctx); err != nil {
		out, _ := inst.Run(context.Background(), "journalctl", "--no-pager", "-o", "short-precise", "-u", instance.UserDataUnit, "-u", "puller.service")
		return inst, fmt.Errorf("%w\njournal of %s:\n%s", err, s.name, out)
	}
	ver, _ := inst.Run(f.ctx, "dpkg-query", "-W", "-f=${Version}", app)
	f.tl.add("%s: first boot done in %s: user-data installed puller and %s %s", s.name, time.Since(start).Round(100*time.Millisecond), app, ver)
	return inst, nil
}

// inService does what Auto Scaling's registration with the load balancer
// does once the instance is up: HAProxy starts health-checking it and sends
// it traffic when healthy. It returns once HAProxy reports it UP.
func (f *fleet) inService(s slot) error {
	if err := f.servers[s.name].Restore(f.ctx); err != nil {
		return err
	}
	f.tl.add("%s: in service behind haproxy", s.name)
	return nil
}

// outOfService takes a dead instance out of the backend, as Auto Scaling does
// when it replaces an unhealthy instance.
func (f *fleet) outOfService(s slot) error {
	return f.servers[s.name].Disable(f.ctx)
}

// lbStatus returns each server's status in the backend (UP, DOWN, DRAIN,
// MAINT, ...).
func (f *fleet) lbStatus() (map[string]string, error) {
	st := map[string]string{}
	for name, h := range f.servers {
		s, err := h.Stat(f.ctx)
		if err != nil {
			return nil, err
		}
		st[name] = strings.Fields(s.Status + " ")[0]
	}
	return st, nil
}

// instance returns the booted instance of a slot.
func (f *fleet) instance(name string) *instance.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.insts[name]
}

// installed returns the version of hello dpkg reports on the instance.
func (f *fleet) installed(name string) (string, error) {
	out, err := f.instance(name).Run(f.ctx, "dpkg-query", "-W", "-f=${Version}", app)
	return strings.TrimSpace(out), err
}

// everInstalled lists the versions of hello that dpkg ever installed on the
// instance, from its log.
func (f *fleet) everInstalled(name string) (map[string]bool, error) {
	b, err := f.instance(name).ReadFile(f.ctx, "/var/log/dpkg.log")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// 2026-12-01 07:00:00 status installed hello:amd64 1.2.0-1
		fs := strings.Fields(sc.Text())
		if len(fs) == 6 && fs[2] == "status" && fs[3] == "installed" && fs[4] == app+":amd64" {
			seen[fs[5]] = true
		}
	}
	return seen, sc.Err()
}

// waitVersion waits until every named host is recorded ok on version in
// Redis and dpkg agrees.
func (f *fleet) waitVersion(version string, hosts []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(f.ctx, timeout)
	defer cancel()
	for {
		recs, err := f.state.Hosts(ctx, app, env)
		var behind []string
		for _, h := range hosts {
			if r, ok := recs[h]; !ok || r.Version != version || r.State != puller.StateOK {
				behind = append(behind, fmt.Sprintf("%s=%+v", h, r))
			}
		}
		if err == nil && len(behind) == 0 {
			for _, h := range hosts {
				if v, err := f.installed(h); err != nil || v != version {
					return fmt.Errorf("%s: Redis says ok on %s, dpkg says %q (%v)", h, version, v, err)
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hosts not ok on %s within %s: %s (%v)", version, timeout, strings.Join(behind, ", "), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// status runs `puller status --fleet` on an instance, as an operator would.
func (f *fleet) status(on string, liveWithin time.Duration) (string, error) {
	return f.instance(on).Run(f.ctx, "puller", "status", "--fleet", "--live-within", liveWithin.String())
}

// timeline prints what happens, with the time since the start, as it
// happens, and keeps it for the report.
type timeline struct {
	start time.Time
	w     io.Writer
	mu    sync.Mutex
	lines []string
}

func newTimeline(w io.Writer) *timeline { return &timeline{start: time.Now(), w: w} }

func (tl *timeline) add(format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	line := fmt.Sprintf("[%7.1fs] %s", time.Since(tl.start).Seconds(), fmt.Sprintf(format, args...))
	tl.lines = append(tl.lines, line)
	fmt.Fprintln(tl.w, line)
}

// since is the time since the timeline started.
func (tl *timeline) since() time.Duration { return time.Since(tl.start) }

// loadGen sends steady requests through the load balancer and counts the
// failed ones. It stops by itself after max requests.
type loadGen struct {
	url    string
	tl     *timeline
	mu     sync.Mutex
	sent   int
	failed int
	stop   chan struct{}
	done   chan struct{}
}

// startLoad sends one request every interval (every fifth one slow, so some
// are in flight when a server drains) until stopped or max were sent.
func startLoad(frontend string, interval time.Duration, max int, tl *timeline) *loadGen {
	g := &loadGen{url: "http://" + frontend, tl: tl, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 15 * time.Second}
	go func() {
		defer close(g.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; i < max; i++ {
			select {
			case <-g.stop:
				return
			case <-tick.C:
			}
			path := "/"
			if i%5 == 0 {
				path = "/?sleep=300ms"
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := get(client, g.url+path)
				g.mu.Lock()
				g.sent++
				if err != nil {
					g.failed++
				}
				g.mu.Unlock()
				if err != nil {
					tl.add("load: FAILED request: %v", err)
				}
			}()
		}
	}()
	return g
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(b, []byte("hello ")) {
		return fmt.Errorf("GET %s: %s %q", url, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// counts returns the requests sent and failed so far.
func (g *loadGen) counts() (sent, failed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sent, g.failed
}

// close stops the generator and waits for requests in flight.
func (g *loadGen) close() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	<-g.done
}
