package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// HAProxyServer is one server line of the test backend.
type HAProxyServer struct {
	Name string // server name in the backend
	Addr string // HOST:PORT it forwards to
	// Disabled starts the server in maintenance: it takes no traffic until
	// the runtime API sets it ready (a host not yet in service).
	Disabled bool
}

// HAProxyOptions configure a test haproxy.
type HAProxyOptions struct {
	// Backend is the backend's name. Default "app".
	Backend string
	// Servers of the backend, balanced round-robin.
	Servers []HAProxyServer
	// Check enables HTTP health checks (GET CheckPath, every 100ms, rise 2,
	// fall 1).
	Check bool
	// CheckPath is the health check's path. Default "/".
	CheckPath string
}

// HAProxy is a real haproxy process on loopback, stopped by t.Cleanup.
type HAProxy struct {
	Frontend  string // HOST:PORT of the HTTP frontend
	Socket    string // unix runtime API socket, level admin
	TCPSocket string // HOST:PORT of the same runtime API over TCP
	Backend   string
}

// StartHAProxy starts haproxy in the foreground with an HTTP frontend, one
// backend and its runtime API on a unix socket and on a TCP port.
func StartHAProxy(t testing.TB, opts HAProxyOptions) *HAProxy {
	t.Helper()
	NeedTools(t, "haproxy")
	if opts.Backend == "" {
		opts.Backend = "app"
	}
	if opts.CheckPath == "" {
		opts.CheckPath = "/"
	}
	dir := t.TempDir()
	ports := make([]int, 2)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			t.Fatalf("haproxy: %v", err)
		}
		ports[i] = p
	}
	h := &HAProxy{
		Frontend:  fmt.Sprintf("127.0.0.1:%d", ports[0]),
		Socket:    filepath.Join(dir, "admin.sock"),
		TCPSocket: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		Backend:   opts.Backend,
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
    stats socket %s mode 600 level admin
    stats socket ipv4@%s level admin
    pidfile %s
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend fe
    bind %s
    default_backend %s
backend %s
    balance roundrobin
`, h.Socket, h.TCPSocket, filepath.Join(dir, "haproxy.pid"), h.Frontend, opts.Backend, opts.Backend)
	if opts.Check {
		fmt.Fprintf(&cfg, "    option httpchk GET %s\n", opts.CheckPath)
	}
	for _, s := range opts.Servers {
		fmt.Fprintf(&cfg, "    server %s %s", s.Name, s.Addr)
		if opts.Check {
			cfg.WriteString(" check inter 100ms rise 2 fall 1")
		}
		if s.Disabled {
			cfg.WriteString(" disabled")
		}
		cfg.WriteString("\n")
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("haproxy", "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", h.Socket); err == nil {
			c.Close()
			if c, err := net.Dial("tcp", h.Frontend); err == nil {
				c.Close()
				return h
			}
		}
		select {
		case <-done:
			t.Fatalf("haproxy exited: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not start within 10s: %s", out.String())
		}
	}
}
