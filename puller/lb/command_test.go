package lb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	tests := []struct {
		name                   string
		cfg                    CommandConfig
		wantDrain, wantRestore string // error substrings; "" = nil
		wantLog                string
	}{
		{
			name:    "drain and restore run in order with the given environment",
			cfg:     CommandConfig{Drain: `echo "drain $APP" >> ` + log, Restore: `echo "restore $APP" >> ` + log, Env: []string{"APP=hello"}},
			wantLog: "drain hello\nrestore hello\n",
		},
		{
			name:        "failures carry the command's last lines",
			cfg:         CommandConfig{Drain: `echo one; echo "lb said no" >&2; exit 3`, Restore: "false"},
			wantDrain:   `drain command "echo one; echo \"lb said no\" >&2; exit 3": exit status 3: one | lb said no`,
			wantRestore: `restore command "false": exit status 1: (no output)`,
		},
		{
			name:      "a hanging command is stopped at the timeout",
			cfg:       CommandConfig{Drain: "sleep 30", Restore: "true", Timeout: 200 * time.Millisecond},
			wantDrain: "context deadline exceeded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(log)
			c, err := NewCommand(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			check := func(step string, err error, want string) {
				t.Helper()
				if want == "" && err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				if want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
					t.Fatalf("%s = %v, want an error containing %q", step, err, want)
				}
			}
			check("Drain", c.Drain(context.Background()), tt.wantDrain)
			check("Restore", c.Restore(context.Background()), tt.wantRestore)
			if tt.wantLog != "" {
				b, _ := os.ReadFile(log)
				if string(b) != tt.wantLog {
					t.Errorf("commands wrote %q, want %q", b, tt.wantLog)
				}
			}
		})
	}
	if _, err := NewCommand(CommandConfig{Drain: "true"}); err == nil {
		t.Error("NewCommand accepted a missing restore command")
	}
}

func TestNone(t *testing.T) {
	if err := (None{}).Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := (None{}).Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
}
