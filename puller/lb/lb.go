// Package lb takes a host out of its load balancer before a restart and puts
// it back afterwards. Each strategy is a Drainer of the agent:
//
//   - None: no load balancer (or one that relies on health checks alone).
//   - HAProxy: the runtime API over a unix or TCP socket sets the server to
//     drain, waits until its sessions reach zero, and back to ready.
//   - ELBv2: DeregisterTargets / RegisterTargets on an ALB or NLB target
//     group, waiting for "unused" and then "healthy"; the instance id comes
//     from IMDSv2.
//   - Command: operator-supplied shell commands.
//
// Drain returns once the host carries no more traffic or the drain time has
// passed, whichever comes first; only a failure to start draining is an
// error. Restore returns once the load balancer has the host back in service
// (and, where it can tell, healthy).
package lb

import (
	"context"

	"github.com/aptfleet/aptfleet/puller"
)

var (
	_ puller.Drainer = None{}
	_ puller.Drainer = (*Command)(nil)
	_ puller.Drainer = (*ELBv2)(nil)
	_ puller.Drainer = (*HAProxy)(nil)
)

// None is the strategy for hosts behind no load balancer.
type None struct{}

// Drain does nothing.
func (None) Drain(context.Context) error { return nil }

// Restore does nothing.
func (None) Restore(context.Context) error { return nil }
