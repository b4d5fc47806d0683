package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/userdata"
)

func newUserdataCmd() *cobra.Command {
	c := userdata.DefaultConfig()
	var keyringFile, caFile, serfKeyFile string
	var staticCreds bool
	cmd := &cobra.Command{
		Use:   "userdata --repo s3://BUCKET/PREFIX --dist DIST --app APP --keyring FILE --region REGION --redis-addr HOST:PORT",
		Short: "Print the EC2 user-data that makes an instance install itself",
		Long: `userdata renders userdata/user-data.sh.tftpl, the same template the fleet
Terraform module uses, and prints the script. The script installs
apt-transport-s3, the repository keyring and source, the puller's configuration,
the puller and the app (puller bootstrap), then starts the agent.

Secrets never appear in it: the Redis AUTH token and the Serf key are read
from the SSM parameters named by --redis-auth-parameter and
--serf-key-ssm-parameter at boot. --static-credentials copies AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY from the environment into the script, for S3-compatible
servers outside AWS only.

Gossip is encrypted by default: give --serf-key-ssm-parameter (on EC2) or
--serf-key-file (hosts outside AWS: the key is written into the script), or
--insecure-gossip to run without a key, which lets any host that reaches the
Serf port join the fleet and raise the live count the deploy slots are sized
from. Redis is reached over TLS unless --redis-tls=false.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyringFile == "" {
				return fmt.Errorf("--keyring: required")
			}
			keyring, err := os.ReadFile(keyringFile)
			if err != nil {
				return fmt.Errorf("--keyring: %w", err)
			}
			c.Keyring = keyring
			if caFile != "" {
				ca, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("--ca-bundle: %w", err)
				}
				c.CABundle = string(ca)
			}
			if serfKeyFile != "" {
				b, err := os.ReadFile(serfKeyFile)
				if err != nil {
					return fmt.Errorf("--serf-key-file: %w", err)
				}
				c.SerfKey = strings.TrimSpace(string(b))
			}
			if c.Env == "" {
				c.Env = c.Dist
			}
			if staticCreds {
				c.AccessKeyID = os.Getenv("AWS_ACCESS_KEY_ID")
				c.SecretAccessKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
				if c.AccessKeyID == "" || c.SecretAccessKey == "" {
					return fmt.Errorf("--static-credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
				}
			}
			out, err := userdata.Render(c)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Repo, "repo", "", "repository root, s3://BUCKET/PREFIX (required)")
	f.StringVar(&c.Dist, "dist", "", "apt distribution the instance installs from (default: --env)")
	f.StringVar(&c.Env, "env", "", "environment of the instance (default: --dist)")
	f.StringVar(&c.App, "app", "", "Debian package name of the app (required)")
	f.StringVar(&keyringFile, "keyring", "", "the repository's OpenPGP public keyring, binary or armored (required)")
	f.StringVar(&c.Component, "component", "main", "repository component the host installs the app from")
	f.StringVar(&c.KeyringPackage, "keyring-package", "", "the repository's keyring package (pkgbuild keyring build): installed at first boot, trusted from /usr/share/keyrings/NAME.gpg and upgraded by the puller")
	f.StringVar(&c.Region, "region", "", "AWS region of the bucket and of SSM (required)")
	f.StringVar(&c.S3Endpoint, "s3-endpoint", "", "HOST:PORT of an S3-compatible server (HTTPS, virtual-host buckets); empty for AWS")
	f.StringVar(&caFile, "ca-bundle", "", "PEM file of extra CAs the instance trusts (for --s3-endpoint)")
	f.StringVar(&c.SSMEndpoint, "ssm-endpoint", "", "URL of the SSM API; empty for AWS")
	f.StringVar(&c.EC2Endpoint, "ec2-endpoint", "", "URL of the EC2 API; empty for AWS")
	f.BoolVar(&staticCreds, "static-credentials", false, "embed AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment (not for EC2)")
	f.StringVar(&c.RedisAddr, "redis-addr", "", "HOST:PORT of the fleet's Redis (required)")
	f.BoolVar(&c.RedisTLS, "redis-tls", c.RedisTLS, "connect to Redis over TLS (--redis-tls=false for a Redis without it)")
	f.StringVar(&c.RedisAuthParameter, "redis-auth-parameter", "", "SSM SecureString holding the Redis AUTH token")
	f.StringVar(&c.RedisUsername, "redis-username", "", "Redis ACL user of the instances (the locks module's instance_user_name); default: the default user")
	f.StringVar(&c.SerfKeyParameter, "serf-key-ssm-parameter", "", "SSM SecureString holding the base64 Serf encryption key (read at boot)")
	f.StringVar(&serfKeyFile, "serf-key-file", "", "file holding the base64 Serf encryption key, written into the script (hosts outside AWS)")
	f.BoolVar(&c.InsecureGossip, "insecure-gossip", false, "render without a gossip key: any host reaching the Serf port can join")
	f.StringVar(&c.SerfJoinASG, "serf-join-asg", "", "Auto Scaling group whose running instances are the Serf peers")
	f.StringSliceVar(&c.SerfJoin, "serf-join", nil, "fixed Serf peer HOST:PORT (repeatable)")
	f.StringVar(&c.SerfBind, "serf-bind", "", "Serf gossip address HOST:PORT (default the puller's 0.0.0.0:7946)")
	f.IntVar(&c.AppPort, "port", c.AppPort, "port the app listens on")
	f.StringVar(&c.HealthURL, "health-url", "", "the app's health check URL (default http://127.0.0.1:PORT/healthz)")
	f.StringVar(&c.TargetGroupARN, "target-group-arn", "", "ALB target group to drain the host from around restarts")
	f.StringVar(&c.HAProxySocket, "haproxy-socket", "", "HAProxy runtime API (tcp://HOST:PORT or a socket path) to drain the host through, instead of an ALB")
	f.StringVar(&c.HAProxyBackend, "haproxy-backend", "", "HAProxy backend holding the host's server, named by the host id (with --haproxy-socket)")
	f.StringVar(&c.SNSTopicARN, "sns-topic-arn", "", "SNS topic for deploy events")
	f.StringVar(&c.SNSEndpoint, "sns-endpoint", "", "URL of the SNS API; empty for AWS")
	f.Float64Var(&c.Fraction, "fraction", c.Fraction, "fraction of the fleet that may deploy at once")
	f.StringVar(&c.Schedule, "schedule", c.Schedule, "the puller's cron schedule")
	f.IntVar(&c.CanaryHosts, "canary-hosts", 0, "canary hosts of each new version (0: no canary stage)")
	f.Float64Var(&c.CanaryPercent, "canary-percent", 0, "canary hosts as a percentage of the live hosts, instead of --canary-hosts")
	f.StringVar(&c.CanaryBake, "canary-bake", "", "how long the canaries bake, e.g. 10m")
	f.StringVar(&c.CanaryPromote, "canary-promote", "", "auto or manual promotion of the canaries (default auto)")
	f.StringArrayVar(&c.Alarms, "alarm", nil, "CloudWatch alarm that halts a rollout when in ALARM (repeatable)")
	f.StringVar(&c.Window, "window", "", `weekly deploy window, e.g. "Mon-Fri 08:00-17:00 Europe/Berlin"`)
	f.StringVar(&c.Validate, "validate", "", "command run as root after a restart, before the health check")
	f.StringVar(&c.ValidateTimeout, "validate-timeout", "", "longest run of --validate (default 2m)")
	return cmd
}
