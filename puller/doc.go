// Package puller is the on-instance agent that keeps a host's applications at
// the newest good version of their apt distribution.
//
// On every trigger (a cron tick with per-host jitter, a Serf "deploy" event, or
// `puller once`) the agent makes one conditional request for the dist's
// InRelease. When it changed, Decide picks the target from the signed index:
// the newest listed version not marked broken, never below the running
// version while the index lists it (a broken mark or a pause only stops
// hosts from starting a version; hosts step down only when the index drops
// theirs). The host then waits for a slot of the app/env's rolling semaphore
// (cap = max(1, floor(fraction x alive members)), recomputed at every attempt
// and never above the smallest cap any host taking part asks for), drains,
// installs, restarts and health-checks. A healthy host rejoins the load
// balancer and releases its slot. A failed step is attributed (Attribute):
// a release failure rolls back and counts toward marking the version broken
// (after broken_after distinct hosts), so every other host stops; a host
// fault rolls back what changed, marks nothing and quarantines this host.
//
// The steps that touch the host (apt, systemd, the load balancer, the health
// check, SNS) are interfaces declared here and implemented in child packages.
package puller
