package puller_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/puller"
)

func TestDecide(t *testing.T) {
	mark := puller.Broken{Reason: "health check: 503", Host: "i-9"}
	pause := puller.Hold{Kind: puller.HoldPause, Reason: "by ops: incident"}
	tests := []struct {
		name    string
		s       puller.Situation
		target  string
		action  puller.Action
		skipped []string
		next    string
	}{
		{name: "upgrade to the newest", s: puller.Situation{Running: "1.0-1", Index: []string{"1.0-1", "1.2-1", "1.1-1"}},
			target: "1.2-1", action: puller.ActionUpgrade, next: "upgrade to 1.2-1 under the rolling lock"},
		{name: "skip a broken newer version", s: puller.Situation{Running: "1.0-1", Index: []string{"1.0-1", "1.1-1", "1.2-1"}, Broken: map[string]puller.Broken{"1.2-1": mark}},
			target: "1.1-1", action: puller.ActionUpgrade, skipped: []string{"1.2-1"}},
		{name: "marks never move a host down", s: puller.Situation{Running: "3.0-1", Index: []string{"1.0-1", "2.0-1", "3.0-1"}, Broken: map[string]puller.Broken{"3.0-1": mark, "2.0-1": mark}},
			target: "3.0-1", action: puller.ActionStay, skipped: []string{"3.0-1"}, next: "stay on 3.0-1"},
		{name: "every version marked: stay", s: puller.Situation{Running: "3.0-1", Index: []string{"1.0-1", "3.0-1"}, Broken: map[string]puller.Broken{"3.0-1": mark, "1.0-1": mark}},
			target: "3.0-1", action: puller.ActionStay, skipped: []string{"3.0-1"}},
		{name: "yanked running version: step down", s: puller.Situation{Running: "3.0-1", Index: []string{"1.0-1", "2.0-1"}},
			target: "2.0-1", action: puller.ActionStepDown, next: "step down to 2.0-1 (3.0-1 left the index) under the rolling lock"},
		{name: "yanked, the next one broken", s: puller.Situation{Running: "3.0-1", Index: []string{"1.0-1", "2.0-1"}, Broken: map[string]puller.Broken{"2.0-1": mark}},
			target: "1.0-1", action: puller.ActionStepDown, skipped: []string{"2.0-1"}},
		{name: "yanked, nothing installable", s: puller.Situation{Running: "3.0-1", Index: []string{"2.0-1"}, Broken: map[string]puller.Broken{"2.0-1": mark}},
			target: "", action: puller.ActionStay, skipped: []string{"2.0-1"}, next: "stay on 3.0-1: the index no longer lists it"},
		{name: "fresh host", s: puller.Situation{Index: []string{"1.0-1", "1.1-1"}, Broken: map[string]puller.Broken{"1.1-1": mark}},
			target: "1.0-1", action: puller.ActionInstall, skipped: []string{"1.1-1"}},
		{name: "fresh host, all broken", s: puller.Situation{Index: []string{"1.0-1"}, Broken: map[string]puller.Broken{"1.0-1": mark}},
			target: "", action: puller.ActionNone, skipped: []string{"1.0-1"}, next: "nothing: every listed version is marked broken"},
		{name: "pause holds an upgrade", s: puller.Situation{Running: "1.0-1", Index: []string{"1.0-1", "1.1-1"}, Holds: []puller.Hold{pause}},
			target: "1.1-1", action: puller.ActionUpgrade, next: "hold: would upgrade to 1.1-1, but paused: by ops: incident"},
		{name: "pause does not matter at rest", s: puller.Situation{Running: "1.1-1", Index: []string{"1.0-1", "1.1-1"}, Holds: []puller.Hold{pause}},
			target: "1.1-1", action: puller.ActionStay, next: "stay on 1.1-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := puller.Decide(tt.s, strings.Compare)
			if d.Target != tt.target || d.Action != tt.action {
				t.Errorf("target %q action %q, want %q %q", d.Target, d.Action, tt.target, tt.action)
			}
			var skipped []string
			for _, s := range d.Skipped {
				skipped = append(skipped, s.Version)
				if s.Broken == nil || !strings.Contains(s.Reason, mark.Reason) || !strings.Contains(s.Reason, mark.Host) {
					t.Errorf("skip %+v does not carry the mark's reason and host", s)
				}
			}
			if strings.Join(skipped, ",") != strings.Join(tt.skipped, ",") {
				t.Errorf("skipped %v, want %v", skipped, tt.skipped)
			}
			if tt.next != "" && !strings.HasPrefix(d.Next, tt.next) {
				t.Errorf("next %q, want %q", d.Next, tt.next)
			}
			if want := d.Moves() && len(tt.s.Holds) == 0; d.Start() != want {
				t.Errorf("Start() = %v with holds %v and action %s", d.Start(), tt.s.Holds, d.Action)
			}
		})
	}
}

func TestAttribute(t *testing.T) {
	plain := errors.New("exit status 1")
	tests := []struct {
		step        string
		err         error
		reinstalled bool
		want        puller.Fault
		kind        puller.HostFaultKind
	}{
		{puller.StepInstall, puller.HostFault(puller.HostSource, plain), true, puller.FaultHost, puller.HostSource},
		{puller.StepInstall, puller.HostFault(puller.HostDiskFull, plain), true, puller.FaultHost, puller.HostDiskFull},
		{puller.StepInstall, plain, true, puller.FaultRelease, ""}, // maintainer scripts on a host where dpkg worked
		{puller.StepInstall, plain, false, puller.FaultHost, puller.HostDpkg},
		{puller.StepDrain, plain, true, puller.FaultHost, puller.HostLB},
		{puller.StepRestart, plain, true, puller.FaultRelease, ""},
		{puller.StepHealth, plain, false, puller.FaultRelease, ""},
	}
	for _, tt := range tests {
		f, k := puller.Attribute(tt.step, tt.err, tt.reinstalled)
		if f != tt.want || k != tt.kind {
			t.Errorf("Attribute(%s, %v, %v) = %s %s, want %s %s", tt.step, tt.err, tt.reinstalled, f, k, tt.want, tt.kind)
		}
	}
}
