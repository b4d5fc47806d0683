package hook

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "grandchild-survived")
	tests := []struct {
		name, cmd string
		timeout   time.Duration
		wantOut   string
		wantErr   string
	}{
		{"passes", `echo "checking $APP $VERSION"; id -u`, 0, "checking hello 1.4.0-1\n" + strconv.Itoa(os.Geteuid()), ""},
		{"exit status", `echo "GET / -> 500" >&2; exit 3`, 0, "GET / -> 500", `validate "echo \"GET / -> 500\" >&2; exit 3": exit status 3`},
		{"timeout kills the group", `(sleep 2; touch ` + marker + `) & echo started; sleep 30`, 300 * time.Millisecond, "started", "timed out after 300ms"},
		{"missing program", `/nonexistent/validate`, 0, "not found", "exit status 127"},
		{"long output keeps its end", `seq 1 5000`, 0, "4999\n5000", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Command{Command: tt.cmd, Timeout: tt.timeout}
			out, err := c.Validate(context.Background(), "hello", "1.4.0-1")
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if !strings.Contains(out, tt.wantOut) || len(out) > MaxOutput {
				t.Fatalf("output %q (%d bytes), want it to contain %q within %d bytes", out, len(out), tt.wantOut, MaxOutput)
			}
		})
	}
	time.Sleep(2500 * time.Millisecond) // past the background job's own sleep 2
	if _, err := os.Stat(marker); err == nil {
		t.Error("a process started by the timed-out hook outlived it")
	}
}
