package testenv

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RedisOptions configure a test redis-server.
type RedisOptions struct {
	// Password, when set, is the server's requirepass (clients must AUTH).
	Password string
	// TLS serves only TLS (with a throwaway CA) on the port; the plain port is off.
	TLS bool
	// AppendOnly turns on the append-only file with fsync on every write, so a
	// restart keeps the data. Off by default: a restart loses everything.
	AppendOnly bool
}

// Redis is a real redis-server on a random loopback port, owned by one test.
type Redis struct {
	// Addr is host:port.
	Addr string
	// Password is the requirepass, "" for none.
	Password string
	// TLSConfig trusts the server's certificate; nil unless TLS was asked for.
	TLSConfig *tls.Config

	t    testing.TB
	args []string
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartRedis starts a redis-server for t (skipping, or failing under CI, when
// redis-server is not installed) and stops it in t.Cleanup.
func StartRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	NeedTools(t, "redis-server")
	dir := t.TempDir()
	r := &Redis{t: t, dir: dir, Password: opts.Password}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redis: pick a port: %v", err)
		}
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		r.args = []string{
			"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--daemonize", "no",
			"--protected-mode", "no", "--logfile", filepath.Join(dir, "redis.log"),
		}
		if opts.AppendOnly {
			r.args = append(r.args, "--appendonly", "yes", "--appendfsync", "always")
		} else {
			r.args = append(r.args, "--appendonly", "no")
		}
		if opts.Password != "" {
			r.args = append(r.args, "--requirepass", opts.Password)
		}
		if opts.TLS {
			if r.TLSConfig == nil {
				r.TLSConfig = writeTLSFiles(t, dir)
			}
			r.args = append(r.args, "--port", "0", "--tls-port", strconv.Itoa(port),
				"--tls-cert-file", filepath.Join(dir, "server.crt"),
				"--tls-key-file", filepath.Join(dir, "server.key"),
				"--tls-ca-cert-file", filepath.Join(dir, "ca.crt"),
				"--tls-auth-clients", "no")
		} else {
			r.args = append(r.args, "--port", strconv.Itoa(port))
		}
		if lastErr = r.start(); lastErr == nil {
			t.Cleanup(r.Stop)
			return r
		}
	}
	t.Fatalf("redis: %v", lastErr)
	return nil
}

func (r *Redis) start() error {
	cmd := exec.Command("redis-server", r.args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited: %v: %s", r.Addr, err, lastLines(string(log), 3))
		default:
		}
		if r.ping() == nil {
			r.mu.Lock()
			r.cmd = cmd
			r.mu.Unlock()
			go func() { <-exited }() // reaped; Stop kills and waits through the process state
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on %s not ready within 10s", r.Addr)
}

// ping sends PING (after AUTH when a password is set) and wants +PONG.
func (r *Redis) ping() error {
	var conn net.Conn
	var err error
	d := net.Dialer{Timeout: time.Second}
	if r.TLSConfig != nil {
		conn, err = tls.DialWithDialer(&d, "tcp", r.Addr, r.TLSConfig)
	} else {
		conn, err = d.Dial("tcp", r.Addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	br := bufio.NewReader(conn)
	if r.Password != "" {
		fmt.Fprintf(conn, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(r.Password), r.Password)
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("auth: %q %v", line, err)
		}
	}
	fmt.Fprint(conn, "PING\r\n")
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("ping: %q", line)
	}
	return nil
}

// Kill stops the server abruptly (SIGKILL), as a crash would. Safe to call twice.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	for i := 0; i < 500; i++ { // the reaper goroutine waits; poll until the port is closed
		c, err := net.DialTimeout("tcp", r.Addr, 50*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Signal sends sig to the server process: SIGSTOP and SIGCONT stall and
// resume it, as a paused VM or a replica falling behind would be.
func (r *Redis) Signal(sig os.Signal) error {
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("redis on %s is not running", r.Addr)
	}
	return cmd.Process.Signal(sig)
}

// Stop kills the server; registered with t.Cleanup.
func (r *Redis) Stop() { r.Kill() }

// Restart kills the server (SIGKILL) and starts it again on the same port. Without
// AppendOnly the data is gone afterwards, unless a snapshot was taken (SAVE):
// the server then starts from that snapshot, as Redis's default RDB
// persistence would.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Kill()
	var err error
	for i := 0; i < 50; i++ { // the port can take a moment to be free again
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("redis: restart: %v", err)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// writeTLSFiles writes a throwaway CA and a server certificate for 127.0.0.1
// into dir and returns a client config that trusts the CA.
func writeTLSFiles(t testing.TB, dir string) *tls.Config {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aptfleet test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.crt", "CERTIFICATE", caDER)
	write("server.crt", "CERTIFICATE", der)
	write("server.key", "EC PRIVATE KEY", keyDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
