// Package e2e runs the whole product on one machine, with real parts only,
// and proves it: the fleet scenario of `make e2e` (and the narrated
// `make demo`).
//
// The harness (build tag e2e, in the package's test files) publishes hello
// with the pkgbuild command into a signed repository on versitygw (TLS,
// virtual-host bucket, real SigV4), runs a real redis-server and a real
// HAProxy, and boots instances as systemd-nspawn containers (real systemd as
// PID 1) from the cached debootstrapped root, each provisioned only by the
// user-data that package userdata renders. A load generator sends steady
// requests through HAProxy during every rollout and counts failures; an SNS
// stand-in (SNS cannot run here) receives the pullers' deploy events and
// renders each with the notifier, as the Slack channel would get it.
//
// Run it as root with `make e2e` (needs `make deps tools testroot`).
package e2e
