#!/bin/bash
# aptfleet first-boot user-data (userdata/user-data.sh.tftpl), run once as root:
# installs the app from the signed apt repo, starts the puller. On EC2
# secrets come from SSM, never from here.
set -euo pipefail
umask 022

APP='hello'
APP_ENV='production'
DIST='stable'
REPO_URL='s3://acme-apt/fleet'
REGION='eu-west-1'
S3_ENDPOINT=''
SSM_ENDPOINT=''
EC2_ENDPOINT=''
SNS_ENDPOINT=''
AWS_KEY_ID=''
AWS_KEY_SECRET=''
REDIS_ADDR='master.locks.abc123.euw1.cache.amazonaws.com:6379'
REDIS_AUTH_PARAMETER='/aptfleet/hello/production/redis-auth'
SERF_KEY_PARAMETER='/aptfleet/hello/production/serf-key'
SERF_KEY=''
SERF_JOIN_ASG='hello-production'
SERF_BIND='0.0.0.0:7946'
SERF_BIND=${SERF_BIND:-0.0.0.0:7946}
HEALTH_URL='http://127.0.0.1:9000/healthz'
SNS_TOPIC_ARN='arn:aws:sns:eu-west-1:123456789012:aptfleet-events'
TARGET_GROUP_ARN='arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/hello-production/0123456789abcdef'
HAPROXY_SOCKET=''
HAPROXY_BACKEND=''

KEYRING=/etc/apt/keyrings/aptfleet.gpg
SOURCES=/etc/apt/sources.list.d/aptfleet.sources
CONFIG=/etc/aptfleet/puller.yaml
ENV_FILE=/etc/aptfleet/puller.env
IMDS=http://169.254.169.254
STEP=start

exec > >(tee -a /var/log/aptfleet-user-data.log) 2>&1

log() { printf '%s aptfleet-user-data: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
step() {
	STEP=$1
	log "step: $1"
}
on_exit() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then log "FAILED (exit $rc) in step: $STEP"; else log "done"; fi
}
trap on_exit EXIT

# retry runs a command up to 5 times, waiting longer each time: for
# transient network and mirror failures. A persistent failure stops the script.
retry() {
	local attempt=1
	until "$@"; do
		if [ "$attempt" -ge 5 ]; then
			log "giving up after $attempt attempts: $*"
			return 1
		fi
		log "attempt $attempt failed, retrying in $((attempt * 5))s: $*"
		sleep $((attempt * 5))
		attempt=$((attempt + 1))
	done
}

# put FILE MODE writes stdin to FILE atomically.
put() {
	local tmp
	tmp=$(mktemp "$1.XXXXXX")
	cat >"$tmp"
	chmod "$2" "$tmp"
	mv -f "$tmp" "$1"
}

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y -q -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

step "install apt-transport-s3"
missing=()
for pkg in apt-transport-s3 python3 curl ca-certificates nftables; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]; then missing+=("$pkg"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	retry "${APT[@]}" update --error-on=any
	retry "${APT[@]}" install --no-install-recommends "${missing[@]}"
fi

step "restrict instance metadata to root"
put /etc/systemd/system/aptfleet-imds.service 0644 <<'UNIT'
[Unit]
Description=IMDS for root only (aptfleet)
DefaultDependencies=no
Before=network-pre.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft 'table inet aptfleet_imds; delete table inet aptfleet_imds; table inet aptfleet_imds { chain output { type filter hook output priority filter; ip daddr 169.254.169.254 meta skuid != 0 reject; ip6 daddr fd00:ec2::254 meta skuid != 0 reject; }; }'
[Install]
WantedBy=sysinit.target
UNIT
systemctl daemon-reload
systemctl enable --now aptfleet-imds.service

step "write the repository keyring"
install -d -m 0755 /etc/apt/keyrings /etc/aptfleet
base64 -d <<'APTFLEET_KEYRING' | put "$KEYRING" 0644
mDMEawJ0exYJKwYBBAHaRw8BAQdA42YwSwt9Om6JmpFuC8Hzd/pNoQSNSlEK3zSTM5Z5awe0L2FwdGZsZWV0IHRlc3QgcmVwb3NpdG9yeSA8cmVwb0BleGFtcGxlLmludmFsaWQ+iJAEExYIADgWIQQH1v+hE0LJThU6E80/ci3KM25rAwUCawJ0ewIbAwULCQgHAgYVCgkICwIEFgIDAQIeAQIXgAAKCRA/ci3KM25rA9zDAP9uV6b8PhMoL7tBAWB0xXaU871ubK4RDCtRl1SPA1S87gEAz/6lcq73Ho5vNf0h6eMOQQtsUEyEmra6v6ln6ljGjwU=
APTFLEET_KEYRING

step "configure apt-transport-s3"
{
	echo "Region = $REGION"
	if [ -n "$S3_ENDPOINT" ]; then echo "Endpoint = $S3_ENDPOINT"; fi
	if [ -n "$AWS_KEY_ID" ]; then
		echo "AccessKeyId = $AWS_KEY_ID"
		echo "SecretAccessKey = $AWS_KEY_SECRET"
	fi
} | put /etc/apt/s3auth.conf 0600

step "write the apt source"
put "$SOURCES" 0644 <<EOF
Types: deb
URIs: $REPO_URL
Suites: $DIST
Components: main
Signed-By: $KEYRING
EOF

# aws_credentials sets AK, SK and TOKEN: the static keys when given, else
# the instance role's credentials from IMDSv2.
aws_credentials() {
	if [ -n "$AWS_KEY_ID" ]; then
		AK=$AWS_KEY_ID SK=$AWS_KEY_SECRET TOKEN=
		return
	fi
	local imds_token role creds
	imds_token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$IMDS/latest/api/token")
	role=$(curl -fsS -H "X-aws-ec2-metadata-token: $imds_token" "$IMDS/latest/meta-data/iam/security-credentials/")
	creds=$(curl -fsS -H "X-aws-ec2-metadata-token: $imds_token" "$IMDS/latest/meta-data/iam/security-credentials/$role")
	AK=$(json_field AccessKeyId <<<"$creds")
	SK=$(json_field SecretAccessKey <<<"$creds")
	TOKEN=$(json_field Token <<<"$creds")
}

# json_field KEY... prints the string at that path of the JSON on stdin.
json_field() {
	python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]: v = v[k]
sys.stdout.write(v)' "$@"
}

# aws_call SERVICE URL CONTENT-TYPE BODY [HEADER] signs a POST with SigV4.
aws_call() {
	if [ -z "${AK:-}" ]; then aws_credentials; fi
	local -a headers=(-H "Content-Type: $3")
	if [ -n "$TOKEN" ]; then headers+=(-H "X-Amz-Security-Token: $TOKEN"); fi
	if [ -n "${5:-}" ]; then headers+=(-H "$5"); fi
	# Credentials go through stdin (-K -), never the process arguments.
	curl -fsS --retry 5 --retry-connrefused -K - --aws-sigv4 "aws:amz:$REGION:$1" \
		"${headers[@]}" --data-binary "$4" "$2" <<<"user = \"$AK:$SK\""
}

# ssm_parameter NAME prints the decrypted value of an SSM parameter.
ssm_parameter() {
	local url=${SSM_ENDPOINT:-https://ssm.$REGION.amazonaws.com}
	aws_call ssm "$url/" application/x-amz-json-1.1 \
		"{\"Name\":\"$1\",\"WithDecryption\":true}" 'X-Amz-Target: AmazonSSM.GetParameter' |
		json_field Parameter Value
}

if [ -n "$REDIS_AUTH_PARAMETER$SERF_KEY_PARAMETER" ]; then
	step "read secrets from SSM"
fi
if [ -n "$REDIS_AUTH_PARAMETER" ]; then
	value=$(ssm_parameter "$REDIS_AUTH_PARAMETER")
	printf '%s\n' "$value" | put /etc/aptfleet/redis-password 0600
fi
if [ -n "$SERF_KEY_PARAMETER" ]; then
	value=$(ssm_parameter "$SERF_KEY_PARAMETER")
	printf '%s\n' "$value" | put /etc/aptfleet/serf.key 0600
fi
if [ -n "$SERF_KEY" ]; then
	printf '%s\n' "$SERF_KEY" | put /etc/aptfleet/serf.key 0600
fi
unset value

# asg_peers NAME prints the private addresses of the Auto Scaling group's
# running instances, without this instance's own.
asg_peers() {
	local url=${EC2_ENDPOINT:-https://ec2.$REGION.amazonaws.com}
	# shellcheck disable=SC2046 # one argument per local address
	aws_call ec2 "$url/" application/x-www-form-urlencoded \
		"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag:aws:autoscaling:groupName&Filter.1.Value.1=$1&Filter.2.Name=instance-state-name&Filter.2.Value.1=running" |
		python3 -c 'import sys, xml.etree.ElementTree as ET
ns = "{http://ec2.amazonaws.com/doc/2016-11-15/}"
for item in ET.parse(sys.stdin).iter(ns + "instancesSet"):
    for i in item.findall(ns + "item"):
        ip = i.findtext(ns + "privateIpAddress")
        if ip and ip not in sys.argv[1:]: print(ip)' $(hostname -I)
}

JOIN=()
if [ -n "$SERF_JOIN_ASG" ]; then
	step "find Serf peers in Auto Scaling group $SERF_JOIN_ASG"
	peers=$(asg_peers "$SERF_JOIN_ASG")
	for ip in $peers; do JOIN+=("$ip:${SERF_BIND##*:}"); done
	log "Serf peers: ${JOIN[*]:-none}"
fi
JOIN+=('10.0.1.10:7946')
JOIN+=('10.0.2.10:7946')

step "write the puller configuration"
{
	cat <<EOF
# Written at first boot by aptfleet user-data; see DefaultConfig in the
# puller package for every field and its default.
fraction: 0.34
schedule: "*/2 * * * *"
redis:
  addr: "$REDIS_ADDR"
  tls: true
EOF
	if [ -n "$REDIS_AUTH_PARAMETER" ]; then echo "  password_file: /etc/aptfleet/redis-password"; fi
	echo "serf:"
	echo "  bind: \"$SERF_BIND\""
	if [ -n "$SERF_KEY_PARAMETER$SERF_KEY" ]; then echo "  encrypt_key_file: /etc/aptfleet/serf.key"; fi
	echo "  join:"
	if [ "${#JOIN[@]}" -eq 0 ]; then echo "    []"; fi
	for peer in "${JOIN[@]}"; do echo "    - \"$peer\""; done
	if [ -n "$SNS_TOPIC_ARN" ]; then echo "sns_topic_arn: \"$SNS_TOPIC_ARN\""; fi
	cat <<EOF
apps:
  - name: "$APP"
    env: "$APP_ENV"
    dist: "$DIST"
    repo: "$REPO_URL"
    keyring: "$KEYRING"
    sources_list: "$SOURCES"
    health:
      url: "$HEALTH_URL"
EOF
	if [ -n "$TARGET_GROUP_ARN" ]; then
		cat <<EOF
    drain:
      strategy: elbv2
      elbv2:
        target_group_arn: "$TARGET_GROUP_ARN"
        port: 9000
        region: "$REGION"
EOF
	elif [ -n "$HAPROXY_SOCKET" ]; then
		cat <<EOF
    drain:
      strategy: haproxy
      haproxy:
        socket: "$HAPROXY_SOCKET"
        backend: "$HAPROXY_BACKEND"
EOF
	fi
	# The gates: single-quoted, and checked by the renderer to hold no quote.
	ALARMS=()
	if [ "${#ALARMS[@]}" -gt 0 ]; then echo "    alarms:"; fi
	for alarm in "${ALARMS[@]}"; do echo "      - \"$alarm\""; done
} | put "$CONFIG" 0644

step "write the puller environment"
{
	echo "AWS_REGION=$REGION"
	if [ -n "$S3_ENDPOINT" ]; then echo "AWS_ENDPOINT_URL_S3=https://$S3_ENDPOINT"; fi
	if [ -n "$SSM_ENDPOINT" ]; then echo "AWS_ENDPOINT_URL_SSM=$SSM_ENDPOINT"; fi
	if [ -n "$SNS_ENDPOINT" ]; then echo "AWS_ENDPOINT_URL_SNS=$SNS_ENDPOINT"; fi
	if [ -n "$AWS_KEY_ID" ]; then
		echo "AWS_ACCESS_KEY_ID=$AWS_KEY_ID"
		echo "AWS_SECRET_ACCESS_KEY=$AWS_KEY_SECRET"
		echo "AWS_EC2_METADATA_DISABLED=true" # static keys: not on EC2, no IMDS
	fi
} | put "$ENV_FILE" 0600
install -d -m 0755 /etc/systemd/system/puller.service.d
put /etc/systemd/system/puller.service.d/aptfleet.conf 0644 <<EOF
[Service]
EnvironmentFile=$ENV_FILE
EOF

step "install the puller"
retry "${APT[@]}" update --error-on=any
retry "${APT[@]}" install puller

step "install $APP with puller bootstrap"
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
retry puller bootstrap
if [ "$(dpkg-query -W -f='${db:Status-Status}' "$APP" 2>/dev/null)" != installed ]; then
	log "puller bootstrap left $APP uninstalled"
	exit 1
fi
log "$APP $(dpkg-query -W -f='${Version}' "$APP") installed"

step "start the puller"
systemctl daemon-reload
systemctl enable --now puller.service
systemctl is-active puller.service
