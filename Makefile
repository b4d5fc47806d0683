# aptfleet — build, test and demo targets. `make help` lists them.

SHELL        := /bin/bash
GO           ?= go
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -s -w -X main.version=$(VERSION)
TOOLS        := $(CURDIR)/.tools
export PATH  := $(TOOLS):$(PATH)

# Debian packages the tests use. `make deps` installs the missing ones.
DEB_PACKAGES := redis-server serf lintian shellcheck debootstrap systemd-container \
                apt-utils apt-transport-s3 aptly reprepro haproxy dpkg-dev gnupg \
                xz-utils zstd curl ca-certificates openssl iproute2 zip unzip time \
                chromium prometheus nftables nginx

# Tools installed with `go install` into .tools/.
VERSITYGW_VERSION := v1.8.0
TFLINT_VERSION    := v0.64.0
# AWS's Lambda Runtime Interface Emulator (the runtime API of AWS's base images).
RIE_VERSION       := v0.0.0-20261030222936-bef5c4ba774d

# Cached debootstrapped Debian root used by the system tests (nspawn instances).
APTFLEET_TESTROOT ?= /var/cache/aptfleet/testroot/bookworm
export APTFLEET_TESTROOT

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## build every binary into ./bin, version stamped
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

.PHONY: deps
deps: ## install the Debian packages the tests need (as root), or print the command
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$(echo $$missing)"; \
	if [ "$$(id -u)" = 0 ]; then echo "deps: installing $$(echo $$missing)"; \
	  systemctl mask --now redis-server.service haproxy.service prometheus.service prometheus-node-exporter.service nginx.service >/dev/null 2>&1 || true; \
	  bash -c "$$cmd"; \
	else echo "deps: missing Debian packages; run as root:"; echo "  $$cmd"; exit 1; fi

.PHONY: tools
tools: $(TOOLS)/versitygw $(TOOLS)/tflint $(TOOLS)/aws-lambda-rie ## install versitygw, tflint and aws-lambda-rie into .tools/

$(TOOLS)/versitygw:
	GOBIN=$(TOOLS) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(TOOLS)/tflint:
	GOBIN=$(TOOLS) $(GO) install github.com/terraform-linters/tflint@$(TFLINT_VERSION)

$(TOOLS)/aws-lambda-rie:
	GOBIN=$(TOOLS) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

.PHONY: lint
lint: tf-lint ## gofmt, go vet, terraform fmt and tflint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...

.PHONY: test
test: deps tools testroot lint ## the full test suite: installs what it needs, then runs every test
	APTFLEET_NO_SKIP=1 $(GO) test -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory test-rules
	$(MAKE) --no-print-directory test-firstboot

.PHONY: test-rules
test-rules: ## check and unit-test the Prometheus alert rules with promtool
	promtool check rules deploy/prometheus/aptfleet.rules.yml
	cd deploy/prometheus && promtool test rules aptfleet.rules.test.yml

.PHONY: test-short
test-short: ## the tests, without installing anything (missing tools skip)
	$(GO) test ./...

.PHONY: clean
clean: ## remove build outputs
	rm -rf bin dist .demo

# The base root is built once per machine and copied per test instance.
TESTROOT_PACKAGES := systemd,systemd-sysv,dbus,ca-certificates,curl,iproute2,procps,gnupg,python3

.PHONY: testroot
testroot: $(APTFLEET_TESTROOT)/.complete ## debootstrap the cached Debian root the system tests boot

$(APTFLEET_TESTROOT)/.complete:
	@if [ "$$(id -u)" != 0 ]; then echo "testroot: debootstrap needs root; system tests will skip"; exit 1; fi
	rm -rf $(APTFLEET_TESTROOT).tmp && mkdir -p $(dir $(APTFLEET_TESTROOT))
	debootstrap --variant=minbase --include=$(TESTROOT_PACKAGES) bookworm $(APTFLEET_TESTROOT).tmp http://deb.debian.org/debian
	rm -rf $(APTFLEET_TESTROOT) && mv $(APTFLEET_TESTROOT).tmp $(APTFLEET_TESTROOT)
	touch $@

# --- repository on S3: publish benchmark ---------------------------------------

.PHONY: bench-publish
bench-publish: ## publish one .deb into 1,000/10,000/50,000-version dists: aptfleet vs aptly on gofakes3
	@for t in aptly /usr/bin/time; do command -v $$t >/dev/null || { echo "bench-publish: $$t is not installed (run make deps)"; exit 1; }; done
	$(GO) run ./repo/internal/bench $(BENCH_PUBLISH_FLAGS)

# --- notifier: the Lambda function's zips ------------------------------------------

# Where `make lambda` writes notifier_linux_{amd64,arm64}.zip (each holds one
# executable, bootstrap, for the provided.al2023 runtime).
LAMBDA_DIR   ?= dist/lambda
LAMBDA_ARCHS := amd64 arm64
# Every zip entry gets this time, so the zips are byte-identical across builds.
LAMBDA_MTIME := 1980-01-01 00:00:00

.PHONY: lambda
lambda: ## build the notifier Lambda zips into $(LAMBDA_DIR) (bootstrap for linux/amd64 and arm64), reproducibly
	@set -euo pipefail; v='$(VERSION)'; out='$(abspath $(LAMBDA_DIR))'; mkdir -p "$$out"; \
	for arch in $(LAMBDA_ARCHS); do \
	  work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -buildvcs=false -tags lambda.norpc \
	    -ldflags "-s -w -buildid= -X main.version=$$v" -o "$$work/bootstrap" ./cmd/notifier; \
	  chmod 0755 "$$work/bootstrap"; TZ=UTC touch -d '$(LAMBDA_MTIME)' "$$work/bootstrap"; \
	  (cd "$$work" && TZ=UTC zip -q -X -D -9 notifier.zip bootstrap); \
	  mv "$$work/notifier.zip" "$$out/notifier_linux_$$arch.zip"; rm -rf "$$work"; \
	  echo "$(LAMBDA_DIR)/notifier_linux_$$arch.zip $$(sha256sum "$$out/notifier_linux_$$arch.zip" | cut -c1-64)"; \
	done

# Cold starts run the emulator afresh each time; warm invokes share one.
BENCH_NOTIFIER_FLAGS ?= -benchtime 20x

.PHONY: bench-notifier
bench-notifier: $(TOOLS)/aws-lambda-rie ## the notifier under AWS's Lambda runtime emulator: cold start and per-invoke time (REPORT lines)
	$(GO) test -run '^$$' -bench 'Emulator' $(BENCH_NOTIFIER_FLAGS) ./cmd/notifier

.PHONY: lambda-check
lambda-check: ## build the Lambda zips twice from HEAD in two directories, the second with an empty Go build cache; require identical bytes
	@set -euo pipefail; v='$(VERSION)'; rev=$$(git rev-parse HEAD); \
	a=$$(mktemp -d); b=$$(mktemp -d); cache=$$(mktemp -d); trap 'chmod -R u+w "$$cache"; rm -rf "$$a" "$$b" "$$cache"' EXIT; \
	for d in "$$a" "$$b"; do mkdir "$$d/src"; git archive "$$rev" | tar -x -C "$$d/src"; done; \
	$(MAKE) --no-print-directory -C "$$a/src" lambda LAMBDA_DIR="$$a/out" VERSION="$$v"; \
	GOCACHE="$$cache" $(MAKE) --no-print-directory -C "$$b/src" lambda LAMBDA_DIR="$$b/out" VERSION="$$v"; \
	for arch in $(LAMBDA_ARCHS); do \
	  cmp "$$a/out/notifier_linux_$$arch.zip" "$$b/out/notifier_linux_$$arch.zip"; \
	  unzip -Z -l "$$a/out/notifier_linux_$$arch.zip" | grep -q -- '-rwxr-xr-x.* bootstrap$$'; \
	done; echo "lambda-check: $$rev builds byte-identical zips"

# --- user-data and Terraform -----------------------------------------------------

# terraform cannot be built with `go install` (replace directives in its go.mod):
# `terraform fmt` runs when a terraform binary is on PATH; tflint always runs.
.PHONY: tf-lint
tf-lint: $(TOOLS)/tflint ## terraform fmt -check (when terraform is installed) and tflint on terraform/
	@if command -v terraform >/dev/null; then \
	  echo "terraform fmt -check -recursive terraform"; \
	  TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 terraform fmt -check -recursive -diff terraform; \
	else echo "tf-lint: terraform is not installed; skipping terraform fmt (tflint still runs)"; fi
	cd terraform && $(TOOLS)/tflint --recursive

# The user-data's first-boot proof: about 2 minutes on an nspawn instance, so it
# sits behind the build tag `system`; `make test` runs it.
.PHONY: test-firstboot
test-firstboot: ## boot an nspawn instance that installs itself with the rendered user-data (root)
	$(GO) vet -tags system ./userdata/
	APTFLEET_NO_SKIP=1 $(GO) test -count=1 -tags system -run '^TestFirstBoot$$' -timeout 20m ./userdata/

# --- puller: its own Debian package ----------------------------------------------

.PHONY: packages
packages: ## build bin/puller and package it with pkgbuild: dist/puller_<version>_amd64.deb (lintian-checked)
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/puller ./cmd/puller
	@deb=$$($(GO) run ./cmd/pkgbuild build --spec packaging/puller/package.yaml --out dist) && echo "$$deb" && \
	if command -v lintian >/dev/null; then lintian --fail-on error --suppress-tags initial-upload-closes-no-bugs,no-manual-page "$$deb"; \
	else echo "packages: lintian is not installed; not checked (run make deps)"; fi

# --- puller: the agent's rollout and idle-tick benchmark ---------------------------

BENCH_ROLLOUT_FLAGS ?= -n 10,100,300 -d 2s -ticks 20

.PHONY: bench-rollout
bench-rollout: ## rollout wall time (N = 10, 100, 300 agents, fraction 1/3), again with a 1-host canary stage, and the real puller's idle tick
	@command -v redis-server >/dev/null || { echo "bench-rollout: redis-server is not installed (run make deps)"; exit 1; }
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/puller ./cmd/puller
	$(GO) run ./puller/internal/rolloutbench $(BENCH_ROLLOUT_FLAGS) -idle -puller bin/puller
	$(GO) run ./puller/internal/rolloutbench $(BENCH_ROLLOUT_FLAGS) -canary

# --- pkgbuild: the hello example, the stage-1 demo, the build benchmark ------------

# Version of the hello example the demo builds (binary stamp and package).
HELLO_VERSION ?= 1.0.0-1
# Builds are reproducible: every time stamp in the package is the last commit's.
HELLO_EPOCH   ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: hello
hello: ## build examples/hello and package it: dist/hello_$(HELLO_VERSION)_amd64.deb
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(HELLO_VERSION)' -o examples/hello/bin/hello ./examples/hello
	SOURCE_DATE_EPOCH=$(HELLO_EPOCH) $(GO) run ./cmd/pkgbuild build --spec examples/hello/package.yaml --version $(HELLO_VERSION) --out dist

.PHONY: demo
demo: ## the whole pipeline: as root, a fleet of nspawn instances rolling hello behind haproxy; otherwise build and publish locally
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory demo-fleet; else \
	  $(MAKE) --no-print-directory demo-local && \
	  echo && echo "== the fleet part of the demo needs root" && \
	  echo "It boots Debian instances with systemd-nspawn (real systemd as PID 1) in cgroups of their own," && \
	  echo "installs Debian packages (make deps), builds versitygw into .tools (make tools) and debootstraps" && \
	  echo "a cached Debian root into $(APTFLEET_TESTROOT) (make testroot, about 300 MB). Run:" && \
	  echo "  sudo make demo"; fi

.PHONY: demo-fleet
demo-fleet: deps tools testroot ## (root) the end-to-end fleet run, narrated: the same scenario as make e2e
	@echo "== aptfleet demo: a fleet of 3, then 4, Debian instances (systemd-nspawn) that install themselves"
	@echo "   from user-data and pull hello from a signed apt repository on an S3 server (versitygw, TLS),"
	@echo "   behind haproxy under steady load, rolling one host at a time under a Redis lock sized by Serf."
	@echo "   Takes about 6 minutes once the tools are built. It prints the URL of the live view of the fleet"
	@echo "   (pkgbuild fleet serve) as it starts: open it in a browser to watch the run."
	APTFLEET_NO_SKIP=1 $(GO) test -count=1 -tags e2e -v -run '^TestFleet$$' -timeout 45m ./internal/e2e/

.PHONY: demo-local
demo-local: hello ## build the hello package, show what it contains, publish and promote it in a local repo (no root, no AWS)
	@deb=dist/hello_$(HELLO_VERSION)_amd64.deb; \
	echo; echo "== $$deb: control"; dpkg-deb --info "$$deb"; \
	echo; echo "== files"; dpkg-deb --contents "$$deb"; \
	work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; dpkg-deb --extract "$$deb" "$$work"; \
	for f in lib/systemd/system/hello-web.service lib/systemd/system/hello.target etc/default/hello; do \
	  echo; echo "== /$$f"; cat "$$work/$$f"; done; \
	dpkg-deb --ctrl-tarfile "$$deb" | tar -xO ./postinst > "$$work/postinst"; \
	echo; echo "== postinst"; cat "$$work/postinst"
	@echo; echo "== publish to a local signed repository ($(DEMO_REPO)), promote, list, verify"
	@$(MAKE) --no-print-directory demo-repo

# Builds per tool in bench-build (Go runs the benchmark once more with one build first).
BENCH_BUILD_RUNS ?= 3

.PHONY: bench-build
bench-build: ## pkgbuild build vs dpkg-deb --build on a 200 MB tree (gzip -9), same run: times and ratio
	@command -v dpkg-deb >/dev/null || { echo "bench-build: dpkg-deb is not installed"; exit 1; }
	$(GO) test -run '^$$' -bench BuildVsDpkgDeb -benchtime $(BENCH_BUILD_RUNS)x ./pkgbuild

# --- repository: publish, promote, list and verify the hello package locally ------

DEMO_REPO ?= .demo/repo

.PHONY: demo-repo
demo-repo: hello ## publish hello to a local signed repo (staging), promote it to production, list and verify
	@mkdir -p .demo
	$(GO) build -trimpath -o .demo/pkgbuild ./cmd/pkgbuild
	@test -f .demo/signing.asc || .demo/pkgbuild key generate --out .demo/signing.asc --public .demo/repo.gpg
	APTFLEET_SIGNING_KEY_FILE=.demo/signing.asc .demo/pkgbuild publish --repo $(DEMO_REPO) --dist staging dist/hello_$(HELLO_VERSION)_amd64.deb
	APTFLEET_SIGNING_KEY_FILE=.demo/signing.asc .demo/pkgbuild promote --repo $(DEMO_REPO) --from staging --to production hello=$(HELLO_VERSION)
	.demo/pkgbuild list --repo $(DEMO_REPO) --dist production --keyring .demo/repo.gpg
	.demo/pkgbuild verify --repo $(DEMO_REPO) --keyring .demo/repo.gpg
	@echo "apt source: deb [signed-by=$(CURDIR)/.demo/repo.gpg] file:$(CURDIR)/$(DEMO_REPO) production main"

# --- puller: rolling lock (redislock) and membership (gossip) ---------------------

.PHONY: trials-lock
trials-lock: ## lock-safety trials against a real redis-server, with their counts
	APTFLEET_LOCK_TRIALS=3 $(GO) test -count=1 -v -timeout 20m -run 'TestLockSafetyTrials|TestStalledProcessDoesNotStartItsStep|TestCapHoldsThroughFailover' ./puller/redislock

.PHONY: trials-marks
trials-marks: ## broken marks surviving Redis data loss: 20 randomized trials each of FLUSHALL and a restart without persistence
	APTFLEET_MARK_TRIALS=20 $(GO) test -count=1 -v -timeout 30m -run 'TestMarksSurviveRedisDataLoss' ./puller

.PHONY: bench-gossip
bench-gossip: ## time from a deploy announce until all of 30 / 100 Serf members on loopback have it
	$(GO) test -run '^$$' -bench DeployReaction -benchtime 20x ./puller/gossip

# --- the whole product end to end --------------------------------------------------

.PHONY: e2e
e2e: ## the fleet scenario on real instances (root): boot, roll, break, recover, behind haproxy under load
	$(GO) vet -tags e2e ./internal/e2e/
	APTFLEET_NO_SKIP=1 $(GO) test -count=1 -tags e2e -v -run '^TestFleet$$' -timeout 45m ./internal/e2e/
