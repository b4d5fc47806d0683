package systemd

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The shape the agent declares (puller.Restarter).
var _ interface {
	Restart(ctx context.Context, app string) error
} = (*Restarter)(nil)

// fakeSystemctl answers systemctl command lines from a table and records
// them. systemd cannot run as PID 1 in a unit test; the real systemctl is
// exercised on a booted instance by puller/systemtest.
type fakeSystemctl struct {
	answers map[string][]answer // command line (without "systemctl ") -> answers in turn; the last repeats
	calls   []string
}

type answer struct {
	out  string
	code int
}

func (f *fakeSystemctl) run(_ context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(args, " ")
	f.calls = append(f.calls, name+" "+line)
	as := f.answers[line]
	if len(as) == 0 {
		return nil, nil
	}
	a := as[0]
	if len(as) > 1 {
		f.answers[line] = as[1:]
	}
	if a.code != 0 {
		return []byte(a.out), exec.Command("sh", "-c", "exit "+strconv.Itoa(a.code)).Run()
	}
	return []byte(a.out), nil
}

const listHello = "list-unit-files --no-legend --no-pager hello.target hello-*.service"

func TestRestart(t *testing.T) {
	unitFiles := "hello-web.service    enabled enabled\nhello-worker.service enabled enabled\nhello-job@.service static -\nhello.target         enabled enabled\n"
	units := "hello.target hello-web.service hello-worker.service"
	tests := []struct {
		name    string
		cfg     Config
		answers map[string][]answer
		want    []string
		wantErr string
	}{
		{
			name: "discovered units restart in one transaction",
			answers: map[string][]answer{
				listHello:            {{out: unitFiles}},
				"is-active " + units: {{out: "active\nactive\nactive\n"}},
			},
			want: []string{
				"systemctl daemon-reload",
				"systemctl " + listHello,
				"systemctl restart " + units,
				"systemctl is-active " + units,
				"systemctl is-active " + units,
			},
		},
		{
			name: "configured units are used as given",
			cfg:  Config{Units: map[string][]string{"hello": {"hello-web.service"}}},
			answers: map[string][]answer{
				"is-active hello-web.service": {{out: "active\n"}},
			},
			want: []string{
				"systemctl daemon-reload",
				"systemctl restart hello-web.service",
				"systemctl is-active hello-web.service",
				"systemctl is-active hello-web.service",
			},
		},
		{
			name: "a unit that dies while settling fails the restart",
			answers: map[string][]answer{
				listHello:            {{out: unitFiles}},
				"is-active " + units: {{out: "active\nactive\nactive\n"}, {out: "active\nactivating\nactive\n", code: 3}},
			},
			want: []string{
				"systemctl daemon-reload",
				"systemctl " + listHello,
				"systemctl restart " + units,
				"systemctl is-active " + units,
				"systemctl is-active " + units,
			},
			wantErr: "after restart: hello-web.service is activating",
		},
		{
			name: "restart failure carries systemctl's message",
			answers: map[string][]answer{
				listHello:          {{out: unitFiles}},
				"restart " + units: {{out: "Job for hello-web.service failed because the control process exited with error code.\nSee \"systemctl status hello-web.service\" and \"journalctl -xeu hello-web.service\" for details.\n", code: 1}},
			},
			want: []string{
				"systemctl daemon-reload",
				"systemctl " + listHello,
				"systemctl restart " + units,
			},
			wantErr: `systemctl restart hello.target hello-web.service hello-worker.service: exit status 1: Job for hello-web.service failed because the control process exited with error code. | See "systemctl status hello-web.service" and "journalctl -xeu hello-web.service" for details.`,
		},
		{
			name:    "no units installed",
			answers: map[string][]answer{listHello: {{code: 1}}},
			want:    []string{"systemctl daemon-reload", "systemctl " + listHello},
			wantErr: "restart hello: systemd: no units: neither hello.target nor hello-*.service is installed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSystemctl{answers: tt.answers}
			cfg := tt.cfg
			cfg.Run = f.run
			cfg.Settle = time.Millisecond
			err := New(cfg).Restart(context.Background(), "hello")
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Restart: %v", err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Restart error:\n got %v\nwant %s", err, tt.wantErr)
			}
			if strings.Join(f.calls, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("commands:\n got %q\nwant %q", f.calls, tt.want)
			}
		})
	}
}

func TestRestartBadApp(t *testing.T) {
	f := &fakeSystemctl{}
	for _, app := range []string{"", "-x", "a b", "hello*", "../x"} {
		if err := New(Config{Run: f.run}).Restart(context.Background(), app); err == nil {
			t.Errorf("Restart(%q) succeeded", app)
		}
	}
	if len(f.calls) != 0 {
		t.Errorf("bad app names ran systemctl: %q", f.calls)
	}
}
