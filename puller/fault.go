package puller

import (
	"errors"
	"fmt"
)

// Fault says whose fault a failed step was: the release's, or the host's.
// Only a release fault counts toward branding a version broken; a host fault
// quarantines the host that had it.
type Fault string

// The two attributions of a failed step.
const (
	FaultRelease Fault = "release" // the version itself is bad: it installed and started but failed its checks
	FaultHost    Fault = "host"    // the host or what surrounds it failed: source, apt, disk, dpkg, load balancer, Redis
)

// HostFaultKind names what failed on the host.
type HostFaultKind string

// Kinds of host faults. The child packages that meet them (puller/apt,
// puller/lb, ...) return a *HostFaultError of one of these kinds.
const (
	HostSource   HostFaultKind = "source"        // the app's apt source file is missing or unreadable
	HostFetch    HostFaultKind = "fetch"         // apt cannot fetch the indexes or the package, or does not find the version
	HostDiskFull HostFaultKind = "disk_full"     // no space left on a filesystem apt or dpkg writes
	HostDpkgLock HostFaultKind = "dpkg_lock"     // the dpkg lock was not obtained in time
	HostDpkg     HostFaultKind = "dpkg"          // an interrupted dpkg that could not be repaired
	HostLB       HostFaultKind = "load_balancer" // the load balancer's API failed (drain or restore)
	HostRedis    HostFaultKind = "redis"         // the fleet state (Redis) was lost mid-deploy
)

// HostFaultError is a step failure caused by the host or what surrounds it,
// not by the release being installed. It never brands a version.
type HostFaultError struct {
	Kind HostFaultKind
	Err  error
}

func (e *HostFaultError) Error() string { return e.Err.Error() }
func (e *HostFaultError) Unwrap() error { return e.Err }

// HostFault wraps err as a host fault of kind k (nil stays nil).
func HostFault(k HostFaultKind, err error) error {
	if err == nil {
		return nil
	}
	return &HostFaultError{Kind: k, Err: err}
}

// Step names of the deploy pipeline, as failures report them.
const (
	StepDrain    = "drain"
	StepInstall  = "install"
	StepRestart  = "restart"
	StepValidate = "validate"
	StepHealth   = "health check"
)

// Attribute classifies a failed step:
//
//   - any *HostFaultError (a missing source, apt unable to fetch or find the
//     version, a full disk, the dpkg lock, an unrepairable dpkg, the load
//     balancer's API, Redis lost) is the host's;
//   - a failed drain is the host's (nothing of the release ran yet);
//   - a failed install whose error the installer did not attribute (the
//     package's maintainer scripts failed) is the release's on a host whose
//     previous install of the package succeeded (reinstalled is true: dpkg
//     works here), the host's on a host that never had it;
//   - a failed restart, validate hook or health check is the release's: the
//     version installed, and its units did not come up healthy.
//
// kind names the host fault's kind when the fault is the host's.
func Attribute(step string, err error, reinstalled bool) (f Fault, kind HostFaultKind) {
	var hf *HostFaultError
	if errors.As(err, &hf) {
		return FaultHost, hf.Kind
	}
	switch step {
	case StepDrain:
		return FaultHost, HostLB
	case StepInstall:
		if reinstalled {
			return FaultRelease, ""
		}
		return FaultHost, HostDpkg
	}
	return FaultRelease, ""
}

// failure is a failed move described for the failure path.
type failure struct {
	step  string
	err   error
	fault Fault
	kind  HostFaultKind
}

func (f failure) reason() string {
	if f.fault == FaultHost {
		return fmt.Sprintf("%s: %v (host fault: %s)", f.step, f.err, f.kind)
	}
	return fmt.Sprintf("%s: %v", f.step, f.err)
}
