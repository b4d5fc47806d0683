// Package userdata renders the EC2 user-data that makes a new instance install
// itself: apt-transport-s3, the repository keyring and source, the puller's
// configuration, the puller and the app, then the running agent.
//
// The script is one template in Terraform's templatefile syntax
// (user-data.sh.tftpl, embedded here and read by the fleet Terraform module
// from the same file). Render evaluates it with the HCL template engine
// Terraform itself uses, so both produce the same bytes for the same inputs.
package userdata

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/robfig/cron/v3"
	"github.com/zclconf/go-cty/cty"

	"github.com/aptfleet/aptfleet/internal/debian"
	"github.com/aptfleet/aptfleet/puller"
)

// Template is the user-data template, in Terraform templatefile syntax.
//
//go:embed user-data.sh.tftpl
var Template string

// TemplateName is the template's file name, relative to this package.
const TemplateName = "user-data.sh.tftpl"

// MaxSize is EC2's limit on user-data, before base64 encoding.
const MaxSize = 16384

// Errors Render returns; callers branch on them with errors.Is.
var (
	// ErrConfig: a Config field is missing or malformed.
	ErrConfig = errors.New("userdata: bad config")
	// ErrTooLarge: the rendered script exceeds MaxSize.
	ErrTooLarge = errors.New("userdata: larger than EC2's 16 KB user-data limit")
)

// Config is what the user-data needs to know about the fleet. Every field
// becomes one template variable, named in its comment, with the same name the
// fleet Terraform module passes to templatefile.
type Config struct {
	// App is the Debian package name of the app (app). Required.
	App string
	// Env is the environment the host belongs to, e.g. "production" (env). Required.
	Env string
	// Dist is the apt distribution installed from (dist). Default: Env.
	Dist string
	// Repo is the repository root, "s3://BUCKET/PREFIX" (repo_url). The
	// bucket name may not contain dots: apt-transport-s3 refuses them. Required.
	Repo string
	// Keyring is the repository's OpenPGP public keyring, binary or armored;
	// it is written dearmored to /etc/apt/keyrings/aptfleet.gpg
	// (keyring_base64, base64 of the binary keyring). Required.
	Keyring []byte
	// Component is the repository component the host installs from: the
	// apt source's Components and the puller's apps[].component
	// (component). Default "main".
	Component string
	// KeyringPackage names the repository's keyring package (pkgbuild
	// keyring build) (keyring_package). When set, first boot installs it
	// after the puller, points the apt source and the puller at
	// /usr/share/keyrings/<name>.gpg, and lists it as an app with no units,
	// so the fleet upgrades it and follows a key rotation. Default "": the
	// keyring above is trusted for good.
	KeyringPackage string
	// Region is the AWS region of the bucket and of SSM (region). Required.
	Region string
	// S3Endpoint is "HOST:PORT" of an S3-compatible server reached over HTTPS
	// with virtual-host buckets (s3_endpoint). Default "" (AWS S3; leave it
	// empty on EC2).
	S3Endpoint string
	// CABundle is a PEM bundle the instance trusts in addition to the system
	// roots, for an S3 or SSM endpoint with a private CA (ca_bundle).
	// Default "" (leave it empty on EC2).
	CABundle string
	// SSMEndpoint is the URL of the SSM API (ssm_endpoint). Default "" (AWS).
	SSMEndpoint string
	// EC2Endpoint is the URL of the EC2 API used to find Serf peers
	// (ec2_endpoint). Default "" (AWS).
	EC2Endpoint string
	// SNSEndpoint is the URL of the SNS API the puller publishes its events
	// to, written to puller.env as AWS_ENDPOINT_URL_SNS (sns_endpoint).
	// Default "" (AWS).
	SNSEndpoint string
	// AccessKeyID and SecretAccessKey are static credentials for S3, SSM,
	// EC2 and SNS (aws_access_key_id, aws_secret_access_key), for
	// S3-compatible servers outside AWS only: they end up in the user-data.
	// With them puller.env also sets AWS_EC2_METADATA_DISABLED=true, so
	// neither the puller's host-id lookup nor the SDK's credential chain
	// calls the instance metadata address, which exists only on EC2.
	// Default "" (the instance role, through IMDSv2).
	AccessKeyID     string
	SecretAccessKey string
	// RedisAddr is the HOST:PORT of the fleet's Redis (redis_addr). Required.
	RedisAddr string
	// RedisTLS connects to Redis over TLS (redis_tls). Default true, as
	// ElastiCache with in-transit encryption (the locks module) needs.
	RedisTLS bool
	// RedisAuthParameter names the SSM SecureString holding the Redis AUTH
	// token, read at boot into /etc/aptfleet/redis-password
	// (redis_auth_ssm_parameter). Default "" (no AUTH).
	RedisAuthParameter string
	// RedisUsername is the Redis ACL user the puller logs in as
	// (redis_username): the locks module's instance user. Default "" (the
	// default user, as with a plain AUTH token).
	RedisUsername string
	// SerfKeyParameter names the SSM SecureString holding the base64 Serf
	// encryption key, read at boot into /etc/aptfleet/serf.key
	// (serf_key_ssm_parameter). Default "". A gossip key is required: this,
	// SerfKey, or InsecureGossip.
	SerfKeyParameter string
	// SerfKey is the base64 Serf encryption key itself (16, 24 or 32 bytes),
	// written into the user-data (serf_key), for hosts outside AWS that have
	// no SSM; on EC2 use SerfKeyParameter, as the user-data is readable
	// wherever instance metadata is. Default "".
	SerfKey string
	// InsecureGossip renders a configuration without a gossip key
	// (insecure_gossip): any host that reaches the Serf port can then join,
	// raise the live count the slot cap is sized from, and announce deploys.
	// Default false (a key is required).
	InsecureGossip bool
	// SerfJoinASG is an Auto Scaling group whose running instances are the
	// Serf peers to join, found with ec2:DescribeInstances at boot
	// (serf_join_asg). Default "" (none).
	SerfJoinASG string
	// SerfJoin lists fixed Serf peers, "HOST:PORT" (serf_join). Default none.
	SerfJoin []string
	// SerfBind is the gossip address, "HOST:PORT" (serf_bind). Default ""
	// (the puller's default, 0.0.0.0:7946, which the fleet's security group opens).
	SerfBind string
	// AppPort is the port the app listens on (app_port). Default 8080.
	AppPort int
	// HealthURL is the app's health check (health_url). Default
	// "http://127.0.0.1:<AppPort>/healthz".
	HealthURL string
	// TargetGroupARN is the ALB target group the puller drains the host from
	// around a restart (target_group_arn). Default "" (no draining).
	TargetGroupARN string
	// HAProxySocket is the HAProxy runtime API the puller drains the host
	// through instead, "tcp://HOST:PORT" or a unix socket path
	// (haproxy_socket). Default "" (none). Needs HAProxyBackend; excludes
	// TargetGroupARN.
	HAProxySocket string
	// HAProxyBackend is the HAProxy backend holding this host's server, whose
	// name is the host id (haproxy_backend). Required with HAProxySocket.
	HAProxyBackend string
	// SNSTopicARN receives the puller's deploy events (sns_topic_arn).
	// Default "" (events are only logged).
	SNSTopicARN string
	// Fraction of the fleet that may deploy at once (fraction). Default
	// puller.DefaultConfig().Fraction, 0.25.
	Fraction float64
	// Schedule is the puller's cron schedule (schedule). Default
	// puller.DefaultConfig().Schedule, "@every 1m".
	Schedule string
	// CanaryHosts is the app's canary.hosts (canary_hosts). Default 0 (no
	// canary stage, unless CanaryPercent).
	CanaryHosts int
	// CanaryPercent is canary.percent, in (0, 100] (canary_percent).
	// Default 0 (unset). Excludes CanaryHosts.
	CanaryPercent float64
	// CanaryBake is canary.bake, a Go duration such as "10m" (canary_bake).
	// Default "" (the puller's, 0).
	CanaryBake string
	// CanaryPromote is canary.promote, "auto" or "manual" (canary_promote).
	// Default "" (the puller's, auto).
	CanaryPromote string
	// Alarms are the CloudWatch alarm names that halt a rollout (alarms).
	// Default none.
	Alarms []string
	// Window is the weekly deploy window, e.g. "Mon-Fri 08:00-17:00
	// Europe/Berlin" (window). Default "" (always).
	Window string
	// Validate is the validate hook's command (validate). Default "" (none).
	// It may not contain a single quote or a line break.
	Validate string
	// ValidateTimeout is validate_timeout, a Go duration (validate_timeout).
	// Default "" (the puller's, 2m).
	ValidateTimeout string
}

// DefaultConfig returns the defaults; the required fields are empty. The
// puller's settings (Fraction, Schedule) take the puller's own defaults, from
// puller.DefaultConfig.
func DefaultConfig() Config {
	p := puller.DefaultConfig()
	return Config{
		RedisTLS: true,
		AppPort:  8080,
		Fraction: p.Fraction,
		Schedule: p.Schedule,
	}
}

// ErrNoGossipKey means a configuration has no Serf key and does not say
// it runs without one.
var ErrNoGossipKey = errors.New("userdata: no gossip key: give serf_key_ssm_parameter (--serf-key-ssm-parameter) or serf_key (--serf-key-file), " +
	"or insecure_gossip (--insecure-gossip): without a key any host that reaches the Serf port can join the fleet, " +
	"raise the live count the deploy slots are sized from, and announce deploys")

var (
	repoRE      = regexp.MustCompile(`^s3://[a-z0-9][a-z0-9-]{1,61}[a-z0-9](/[A-Za-z0-9._~-]+)*/?$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	hostPortRE  = regexp.MustCompile(`^[A-Za-z0-9.-]+:[0-9]{1,5}$`)
	endpointRE  = regexp.MustCompile(`^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)
	keyIDRE     = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	secretRE    = regexp.MustCompile(`^[A-Za-z0-9/+=._-]+$`)
	ssmNameRE   = regexp.MustCompile(`^[A-Za-z0-9_./-]+$`)
	redisUserRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	asgRE       = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	urlRE       = regexp.MustCompile(`^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/?=&%+-]*)?$`)
	snsARNRE    = regexp.MustCompile(`^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$`)
	tgARNRE     = regexp.MustCompile(`^arn:[a-z-]+:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/[A-Za-z0-9-]+/[0-9a-f]+$`)
	socketRE    = regexp.MustCompile(`^(tcp://[A-Za-z0-9.-]+:[0-9]{1,5}|/[A-Za-z0-9._/-]+)$`)
	backendRE   = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	durationRE  = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`)
	promoteRE   = regexp.MustCompile(`^(auto|manual)$`)
	alarmRE     = regexp.MustCompile(`^[A-Za-z0-9 _./#:()+=@-]+$`) // CloudWatch names, without quotes
	windowRE    = regexp.MustCompile(`^[A-Za-z0-9 ,:/_+-]+$`)
	validateRE  = regexp.MustCompile(`^[^'\r\n\x00]+$`)
	scheduleRE  = regexp.MustCompile(`^[A-Za-z0-9@*/, -]+$`)
)

// normalize fills defaults and validates c, returning the dearmored keyring.
// The checks also keep every value safe inside the script's single-quoted
// shell strings and double-quoted YAML scalars.
func (c *Config) normalize() ([]byte, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if c.Dist == "" {
		c.Dist = c.Env
	}
	if c.Component == "" {
		c.Component = "main"
	}
	def := DefaultConfig()
	if c.AppPort == 0 {
		c.AppPort = def.AppPort
	}
	if c.HealthURL == "" {
		c.HealthURL = fmt.Sprintf("http://127.0.0.1:%d/healthz", c.AppPort)
	}
	if c.Fraction == 0 {
		c.Fraction = def.Fraction
	}
	if c.Schedule == "" {
		c.Schedule = def.Schedule
	}
	match := func(field, value string, valid func(string) bool, what string, required bool) error {
		if value == "" {
			if required {
				return bad("%s: required", field)
			}
			return nil
		}
		if !valid(value) {
			return bad("%s: %q is not %s", field, value, what)
		}
		return nil
	}
	checks := []struct {
		field, value string
		valid        func(string) bool
		what         string
		required     bool
	}{
		{"app", c.App, debian.ValidPackageName, "a Debian package name", true},
		{"keyring_package", c.KeyringPackage, debian.ValidPackageName, "a Debian package name", false},
		{"component", c.Component, debian.ValidDist, "a component name", true},
		{"env", c.Env, debian.ValidDist, "an environment name", true}, // the default dist, so named like one
		{"dist", c.Dist, debian.ValidDist, "a distribution name", true},
		{"repo", c.Repo, repoRE.MatchString, "s3://BUCKET/PREFIX with a bucket name without dots", true},
		{"region", c.Region, regionRE.MatchString, "an AWS region", true},
		{"s3_endpoint", c.S3Endpoint, hostPortRE.MatchString, "HOST:PORT", false},
		{"ssm_endpoint", c.SSMEndpoint, endpointRE.MatchString, "an http(s)://HOST[:PORT] URL", false},
		{"ec2_endpoint", c.EC2Endpoint, endpointRE.MatchString, "an http(s)://HOST[:PORT] URL", false},
		{"sns_endpoint", c.SNSEndpoint, endpointRE.MatchString, "an http(s)://HOST[:PORT] URL", false},
		{"aws_access_key_id", c.AccessKeyID, keyIDRE.MatchString, "an access key id", false},
		{"aws_secret_access_key", c.SecretAccessKey, secretRE.MatchString, "a secret access key", false},
		{"redis_addr", c.RedisAddr, hostPortRE.MatchString, "HOST:PORT", true},
		{"redis_auth_ssm_parameter", c.RedisAuthParameter, ssmNameRE.MatchString, "an SSM parameter name", false},
		{"redis_username", c.RedisUsername, redisUserRE.MatchString, "a Redis user name (letters, digits, _ . -)", false},
		{"serf_key_ssm_parameter", c.SerfKeyParameter, ssmNameRE.MatchString, "an SSM parameter name", false},
		{"serf_join_asg", c.SerfJoinASG, asgRE.MatchString, "an Auto Scaling group name", false},
		{"serf_bind", c.SerfBind, hostPortRE.MatchString, "HOST:PORT", false},
		{"health_url", c.HealthURL, urlRE.MatchString, "an http(s) URL", true},
		{"target_group_arn", c.TargetGroupARN, tgARNRE.MatchString, "a target group ARN", false},
		{"haproxy_socket", c.HAProxySocket, socketRE.MatchString, "tcp://HOST:PORT or an absolute unix socket path", false},
		{"haproxy_backend", c.HAProxyBackend, backendRE.MatchString, "an HAProxy backend name", false},
		{"sns_topic_arn", c.SNSTopicARN, snsARNRE.MatchString, "an SNS topic ARN", false},
		{"schedule", c.Schedule, scheduleRE.MatchString, "a cron schedule", true},
		{"canary_bake", c.CanaryBake, durationRE.MatchString, "a duration such as 10m", false},
		{"canary_promote", c.CanaryPromote, promoteRE.MatchString, "auto or manual", false},
		{"window", c.Window, windowRE.MatchString, "a window such as \"Mon-Fri 08:00-17:00 Europe/Berlin\"", false},
		{"validate", c.Validate, validateRE.MatchString, "a command without single quotes or line breaks", false},
		{"validate_timeout", c.ValidateTimeout, durationRE.MatchString, "a duration such as 2m", false},
	}
	for _, ch := range checks {
		if err := match(ch.field, ch.value, ch.valid, ch.what, ch.required); err != nil {
			return nil, err
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return nil, bad("aws_access_key_id, aws_secret_access_key: give both or neither")
	}
	switch {
	case c.SerfKeyParameter != "" && c.SerfKey != "":
		return nil, bad("serf_key_ssm_parameter, serf_key: give one gossip key, not both")
	case c.InsecureGossip && (c.SerfKeyParameter != "" || c.SerfKey != ""):
		return nil, bad("insecure_gossip: set with a gossip key; give one or the other")
	case c.SerfKeyParameter == "" && c.SerfKey == "" && !c.InsecureGossip:
		return nil, ErrNoGossipKey
	}
	if c.SerfKey != "" {
		k, err := base64.StdEncoding.DecodeString(c.SerfKey)
		if err != nil || !secretRE.MatchString(c.SerfKey) {
			return nil, bad("serf_key: not base64")
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return nil, bad("serf_key: %d bytes, want 16, 24 or 32", n)
		}
	}
	if c.HAProxySocket != "" && c.HAProxyBackend == "" {
		return nil, bad("haproxy_backend: required with haproxy_socket")
	}
	if c.HAProxyBackend != "" && c.HAProxySocket == "" {
		return nil, bad("haproxy_socket: required with haproxy_backend")
	}
	if c.HAProxySocket != "" && c.TargetGroupARN != "" {
		return nil, bad("target_group_arn, haproxy_socket: give one drain strategy, not both")
	}
	for i, p := range c.SerfJoin {
		if !hostPortRE.MatchString(p) {
			return nil, bad("serf_join[%d]: %q is not HOST:PORT", i, p)
		}
	}
	if c.AppPort < 1 || c.AppPort > 65535 {
		return nil, bad("app_port: %d is not a port number", c.AppPort)
	}
	if !(c.Fraction > 0 && c.Fraction <= 1) {
		return nil, bad("fraction: %v is outside (0, 1]", c.Fraction)
	}
	if _, err := cron.ParseStandard(c.Schedule); err != nil {
		return nil, bad("schedule: %q: %v", c.Schedule, err)
	}
	if c.CanaryHosts < 0 {
		return nil, bad("canary_hosts: %d is negative", c.CanaryHosts)
	}
	if c.CanaryPercent != 0 && !(c.CanaryPercent > 0 && c.CanaryPercent <= 100) {
		return nil, bad("canary_percent: %v is outside (0, 100]", c.CanaryPercent)
	}
	if c.CanaryHosts > 0 && c.CanaryPercent > 0 {
		return nil, bad("canary_hosts, canary_percent: give one, not both")
	}
	if c.CanaryHosts == 0 && c.CanaryPercent == 0 && (c.CanaryBake != "" || c.CanaryPromote != "") {
		return nil, bad("canary_bake, canary_promote: set without canary_hosts or canary_percent")
	}
	for i, a := range c.Alarms {
		if !alarmRE.MatchString(a) || strings.TrimSpace(a) == "" {
			return nil, bad("alarms[%d]: %q is not an alarm name", i, a)
		}
	}
	if err := checkCABundle(c.CABundle); err != nil {
		return nil, bad("ca_bundle: %v", err)
	}
	keyring, err := publicKeyring(c.Keyring)
	if err != nil {
		return nil, bad("keyring: %v", err)
	}
	return keyring, nil
}

// publicKeyring returns the binary form of an armored or binary OpenPGP
// keyring, refusing empty keyrings and secret keys.
func publicKeyring(data []byte) ([]byte, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("required")
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP")) {
		block, err := armor.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("bad armor: %v", err)
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("armored %q, want a public key block", block.Type)
		}
		if data, err = io.ReadAll(block.Body); err != nil {
			return nil, fmt.Errorf("bad armor: %v", err)
		}
	}
	keys, err := openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not an OpenPGP keyring: %v", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	for _, k := range keys {
		if k.PrivateKey != nil {
			return nil, errors.New("contains a secret key; give the public keyring")
		}
	}
	return data, nil
}

// checkCABundle accepts "" or PEM CERTIFICATE blocks and nothing else.
func checkCABundle(s string) error {
	if s == "" {
		return nil
	}
	rest := []byte(s)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %q, want CERTIFICATE", block.Type)
		}
		n++
	}
	if n == 0 || len(bytes.TrimSpace(rest)) != 0 {
		return errors.New("not a PEM bundle of certificates")
	}
	return nil
}

// Vars returns c's template variables as the fleet Terraform module passes
// them to templatefile, after filling defaults and validating.
func (c Config) Vars() (map[string]cty.Value, error) {
	keyring, err := c.normalize()
	if err != nil {
		return nil, err
	}
	join := cty.ListValEmpty(cty.String)
	if len(c.SerfJoin) > 0 {
		peers := make([]cty.Value, len(c.SerfJoin))
		for i, p := range c.SerfJoin {
			peers[i] = cty.StringVal(p)
		}
		join = cty.ListVal(peers)
	}
	alarms := cty.ListValEmpty(cty.String)
	if len(c.Alarms) > 0 {
		vals := make([]cty.Value, len(c.Alarms))
		for i, a := range c.Alarms {
			vals[i] = cty.StringVal(a)
		}
		alarms = cty.ListVal(vals)
	}
	return map[string]cty.Value{
		"app":                      cty.StringVal(c.App),
		"env":                      cty.StringVal(c.Env),
		"dist":                     cty.StringVal(c.Dist),
		"repo_url":                 cty.StringVal(c.Repo),
		"keyring_base64":           cty.StringVal(base64.StdEncoding.EncodeToString(keyring)),
		"keyring_package":          cty.StringVal(c.KeyringPackage),
		"component":                cty.StringVal(c.Component),
		"region":                   cty.StringVal(c.Region),
		"s3_endpoint":              cty.StringVal(c.S3Endpoint),
		"ca_bundle":                cty.StringVal(strings.TrimRight(c.CABundle, "\r\n")),
		"ssm_endpoint":             cty.StringVal(c.SSMEndpoint),
		"ec2_endpoint":             cty.StringVal(c.EC2Endpoint),
		"sns_endpoint":             cty.StringVal(c.SNSEndpoint),
		"aws_access_key_id":        cty.StringVal(c.AccessKeyID),
		"aws_secret_access_key":    cty.StringVal(c.SecretAccessKey),
		"redis_addr":               cty.StringVal(c.RedisAddr),
		"redis_tls":                cty.BoolVal(c.RedisTLS),
		"redis_auth_ssm_parameter": cty.StringVal(c.RedisAuthParameter),
		"redis_username":           cty.StringVal(c.RedisUsername),
		"serf_key_ssm_parameter":   cty.StringVal(c.SerfKeyParameter),
		"serf_key":                 cty.StringVal(c.SerfKey),
		"serf_join_asg":            cty.StringVal(c.SerfJoinASG),
		"serf_join":                join,
		"serf_bind":                cty.StringVal(c.SerfBind),
		"app_port":                 cty.NumberIntVal(int64(c.AppPort)),
		"health_url":               cty.StringVal(c.HealthURL),
		"target_group_arn":         cty.StringVal(c.TargetGroupARN),
		"haproxy_socket":           cty.StringVal(c.HAProxySocket),
		"haproxy_backend":          cty.StringVal(c.HAProxyBackend),
		"sns_topic_arn":            cty.StringVal(c.SNSTopicARN),
		"fraction":                 cty.StringVal(strconv.FormatFloat(c.Fraction, 'f', -1, 64)),
		"schedule":                 cty.StringVal(c.Schedule),
		"canary_hosts":             cty.NumberIntVal(int64(c.CanaryHosts)),
		"canary_percent":           cty.NumberFloatVal(c.CanaryPercent),
		"canary_bake":              cty.StringVal(c.CanaryBake),
		"canary_promote":           cty.StringVal(c.CanaryPromote),
		"alarms":                   alarms,
		"window":                   cty.StringVal(c.Window),
		"validate":                 cty.StringVal(c.Validate),
		"validate_timeout":         cty.StringVal(c.ValidateTimeout),
	}, nil
}

// Render returns the user-data script for c.
func Render(c Config) ([]byte, error) {
	vars, err := c.Vars()
	if err != nil {
		return nil, err
	}
	out, err := Execute(Template, vars)
	if err != nil {
		return nil, err
	}
	if len(out) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(out), MaxSize)
	}
	return out, nil
}

// Execute evaluates a templatefile-syntax template with vars, as Terraform's
// templatefile does (without Terraform's function library, which the
// user-data template does not use).
func Execute(tmpl string, vars map[string]cty.Value) ([]byte, error) {
	expr, diags := hclsyntax.ParseTemplate([]byte(tmpl), TemplateName, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse %s: %s", TemplateName, diags.Error())
	}
	for _, tr := range expr.Variables() {
		if _, ok := vars[tr.RootName()]; !ok {
			return nil, fmt.Errorf("%s: variable %q is not set", TemplateName, tr.RootName())
		}
	}
	val, diags := expr.Value(&hcl.EvalContext{Variables: vars})
	if diags.HasErrors() {
		return nil, fmt.Errorf("render %s: %s", TemplateName, diags.Error())
	}
	if !val.Type().Equals(cty.String) || val.IsNull() || !val.IsKnown() {
		return nil, fmt.Errorf("render %s: result is %s, not a string", TemplateName, val.Type().FriendlyName())
	}
	return []byte(val.AsString()), nil
}

// Variables returns the names of the variables the template refers to.
func Variables(tmpl string) ([]string, error) {
	expr, diags := hclsyntax.ParseTemplate([]byte(tmpl), TemplateName, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse %s: %s", TemplateName, diags.Error())
	}
	seen := map[string]bool{}
	var names []string
	for _, tr := range expr.Variables() {
		if n := tr.RootName(); !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names, nil
}
