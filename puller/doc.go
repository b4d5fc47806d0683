// Package puller is the on-instance agent that keeps a host's applications at
// the newest good version of their apt distribution.
//
// On every trigger (a cron tick with per-host jitter, a Serf "deploy" event, or
// `puller once`) the agent makes one conditional request for the dist's
// InRelease. When it changed, the target is the highest version in the index
// that Redis does not mark broken. The host then waits for a slot of the
// app/env's rolling semaphore (cap = max(1, floor(fraction x alive members)),
// recomputed at every attempt and never above the smallest cap any host taking
// part asks for), drains, installs, restarts and health-checks. A healthy host
// rejoins the load balancer and releases its slot; an unhealthy one marks the
// version broken so every other host stops, reinstalls the previous version,
// and reports a halt.
//
// The steps that touch the host (apt, systemd, the load balancer, the health
// check, SNS) are interfaces declared here and implemented in child packages.
package puller
