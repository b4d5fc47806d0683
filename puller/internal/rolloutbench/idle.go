package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/storeurl"
)

// runIdle starts the real puller binary (`puller run`) against a real
// redis-server, a Serf member on loopback and an S3-compatible server
// (gofakes3, in this process, counting requests) holding a signed repository
// whose only app is already at its newest version, and observes ticks idle
// ticks: S3 requests per tick, apt-get runs (through a counting apt-get on
// PATH) and the process's resident memory.
func runIdle(ctx context.Context, bin string, ticks int, w io.Writer) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("puller binary: %w (run `make build`)", err)
	}
	dir, err := os.MkdirTemp("", "idlebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	addr, stop, err := redisServer(dir)
	if err != nil {
		return err
	}
	defer stop()

	// The app is a package this machine has installed, published at its
	// installed version: the agent finds nothing to do, as on an idle tick.
	const app = "base-files"
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", app).Output()
	if err != nil {
		return fmt.Errorf("dpkg-query %s: %w", app, err)
	}
	installed := strings.TrimSpace(string(out))

	backend := s3mem.New()
	if err := backend.CreateBucket("idle-bench"); err != nil {
		return err
	}
	var requests, inRelease atomic.Int64
	s3h := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if strings.HasSuffix(r.URL.Path, "/InRelease") {
			inRelease.Add(1)
		}
		s3h.ServeHTTP(rw, r)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	endpoint := "http://" + ln.Addr().String()
	os.Setenv("AWS_ACCESS_KEY_ID", "bench")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "bench-secret")
	os.Setenv("AWS_REGION", "us-east-1")

	var key bytes.Buffer
	if err := repo.GenerateKey(&key, "idle bench", "bench@aptfleet.invalid", nil); err != nil {
		return err
	}
	signer, err := repo.ParseSigner(key.Bytes(), nil)
	if err != nil {
		return err
	}
	keyring := filepath.Join(dir, "keyring.gpg")
	kf, err := os.Create(keyring)
	if err != nil {
		return err
	}
	if err := signer.Keyring().Write(kf); err != nil {
		return err
	}
	kf.Close()
	debPath := filepath.Join(dir, app+".deb")
	if err := debs.WriteFile(debPath, debs.Spec{Name: app, Version: installed}); err != nil {
		return err
	}
	store, err := storeurl.Open(ctx, "s3://idle-bench/repo", storeurl.Options{Endpoint: endpoint, Region: "us-east-1"})
	if err != nil {
		return err
	}
	rp := &repo.Repo{Store: store, Signer: signer, Config: repo.DefaultConfig()}
	if _, err := rp.Publish(ctx, "bench", "main", []string{debPath}); err != nil {
		return fmt.Errorf("publish: %w", err)
	}

	// A counting apt-get first on PATH.
	shim := filepath.Join(dir, "bin")
	count := filepath.Join(dir, "apt-get.runs")
	os.MkdirAll(shim, 0o755)
	script := "#!/bin/sh\necho \"$*\" >> " + count + "\nexec /usr/bin/apt-get \"$@\"\n"
	if err := os.WriteFile(filepath.Join(shim, "apt-get"), []byte(script), 0o755); err != nil {
		return err
	}
	serfPort, err := freePort()
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`host_id: idle-bench
schedule: "@every 1s"
jitter: 0s
redis: {addr: %q}
serf: {bind: "127.0.0.1:%d"}
apps:
  - name: %s
    env: bench
    repo: s3://idle-bench/repo
    s3_endpoint: %q
    s3_region: us-east-1
    keyring: %q
`, addr, serfPort, app, endpoint, keyring)
	cfgPath := filepath.Join(dir, "puller.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "PATH="+shim+":"+os.Getenv("PATH"), "AWS_EC2_METADATA_DISABLED=true")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	before := requests.Load()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	// The first cycle reads the index (InRelease + Packages by hash); wait for it.
	deadline := time.Now().Add(30 * time.Second)
	for requests.Load()-before < 2 {
		if time.Now().After(deadline) {
			return fmt.Errorf("puller made no request within 30s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	first := requests.Load() - before
	r0, i0 := requests.Load(), inRelease.Load()
	time.Sleep(time.Duration(ticks) * time.Second)
	dr, di := requests.Load()-r0, inRelease.Load()-i0
	rss, hwm := procMem(cmd.Process.Pid)
	runs := 0
	if b, err := os.ReadFile(count); err == nil {
		runs = strings.Count(string(b), "\n")
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		return fmt.Errorf("puller logged errors:\n%s", logs.String())
	}

	fmt.Fprintf(w, "\nIdle ticks of the real `puller run` (schedule @every 1s, app %s already at %s, S3 on loopback)\n", app, installed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ticks observed\tS3 requests\tof which InRelease\trequests/tick\tapt-get runs\tRSS\tpeak RSS\tstartup requests\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f\t%d\t%.1f MB\t%.1f MB\t%d\t\n", ticks, dr, di, float64(dr)/float64(ticks), runs,
		float64(rss)/1024, float64(hwm)/1024, first)
	return tw.Flush()
}

// procMem returns VmRSS and VmHWM of pid, in KiB.
func procMem(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			hwm = n
		}
	}
	return rss, hwm
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
