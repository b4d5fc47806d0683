package userdata_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/userdata"
)

// TestRetryAndFailure runs the script's retry, step and exit handling: a
// transient failure is retried until it passes, a persistent one gives up
// after five attempts, and the script then exits non-zero with a
// timestamped line naming the failed step.
func TestRetryAndFailure(t *testing.T) {
	testenv.NeedTools(t, "bash")
	out, err := userdata.Render(minimal(t))
	if err != nil {
		t.Fatal(err)
	}
	script := string(out)
	lib := "set -euo pipefail\nSTEP=start\n"
	for _, fn := range []string{"log", "step", "on_exit", "retry"} {
		if fn == "log" {
			// log is a one-line function.
			m := regexp.MustCompile(`(?m)^log\(\) \{.*\}$`).FindString(script)
			if m == "" {
				t.Fatal("script has no log function")
			}
			lib += m + "\n"
			continue
		}
		lib += shellFunction(t, script, fn)
	}
	if !strings.Contains(script, "\ntrap on_exit EXIT\n") {
		t.Fatal("script does not trap EXIT with on_exit")
	}
	// No real waiting in the test.
	lib += "trap on_exit EXIT\nsleep() { :; }\n"

	for _, tc := range []struct {
		name     string
		body     string
		ok       bool
		attempts int
		want     []string
	}{
		{"transient failure retried", `step "flaky thing"
retry flaky
echo after`, true, 3, []string{"attempt 1 failed, retrying in 5s: flaky", "attempt 2 failed, retrying in 10s: flaky", "aptfleet-user-data: done"}},
		{"persistent failure stops the script", `step "install the puller"
retry false
echo never`, false, 0, []string{"giving up after 5 attempts: false", "FAILED (exit 1) in step: install the puller"}},
		{"plain failure names its step", `step "write the apt source"
false
echo never`, false, 0, []string{"FAILED (exit 1) in step: write the apt source"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			counter := filepath.Join(dir, "count")
			flaky := "flaky() { n=$(cat " + counter + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " + counter + "; [ $n -ge 3 ]; }\n"
			cmd := exec.Command("bash", "-c", lib+flaky+tc.body)
			var outb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &outb, &outb
			err := cmd.Run()
			got := outb.String()
			if (err == nil) != tc.ok {
				t.Fatalf("exit error %v, want ok=%v\n%s", err, tc.ok, got)
			}
			if strings.Contains(got, "never") {
				t.Errorf("the script went on after a failure:\n%s", got)
			}
			if tc.ok && !strings.Contains(got, "after") {
				t.Errorf("the script stopped after a retried success:\n%s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if tc.attempts > 0 {
				n, _ := os.ReadFile(counter)
				if strings.TrimSpace(string(n)) != "3" {
					t.Errorf("flaky ran %s times, want 3", n)
				}
			}
			stamp := regexp.MustCompile(`(?m)^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z aptfleet-user-data: step: `)
			if !stamp.MatchString(got) {
				t.Errorf("no timestamped step line:\n%s", got)
			}
		})
	}
}
