package puller

import (
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
)

const rulesDir = "../deploy/prometheus"

// TestAlertRules runs promtool's unit tests of the shipped alert rules.
func TestAlertRules(t *testing.T) {
	testenv.NeedTools(t, "promtool")
	cmd := exec.Command("promtool", "test", "rules", "aptfleet.rules.test.yml")
	cmd.Dir = rulesDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestRulesUseServedMetrics holds the rules to the metrics: every
// aptfleet_puller_* name the rules use is one the agent serves.
func TestRulesUseServedMetrics(t *testing.T) {
	rules, err := os.ReadFile(rulesDir + "/aptfleet.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	m.setVersion("a", "e", "1")
	m.lastCheck.WithLabelValues("a", "e").Set(1)
	m.checked("a", "e", time.Unix(1, 0))
	m.setValidUntil("a", "e", time.Unix(1, 0))
	m.setState("a", "e", "ok")
	m.setHalted("a", "e", false)
	m.observeStep("a", "e", "install", time.Second)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, f := range fams {
		served[f.GetName()] = true
	}
	used := regexp.MustCompile(`aptfleet_puller_[a-z_]+`).FindAllString(string(rules), -1)
	if len(used) == 0 {
		t.Fatal("the rules use no aptfleet_puller_ metric")
	}
	for _, name := range used {
		if !served[name] {
			t.Errorf("the rules use %s, which the agent does not serve", name)
		}
	}
	if !served["aptfleet_puller_step_duration_seconds"] {
		t.Error("no per-step duration histogram")
	}
}
