// Command hello is the example web service aptfleet ships: it serves its
// version on /, answers health checks on /healthz, listens on $PORT and, on
// SIGTERM, stops accepting connections and drains in-flight requests before
// exiting. `hello clock` is its second process: it logs a heartbeat every
// $CLOCK_INTERVAL.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// version is stamped with -ldflags "-X main.version=...".
var version = "dev"

// healthStatus is the HTTP status /healthz answers. Stamping another one
// (-ldflags "-X main.healthStatus=503") builds a bad release that starts and
// serves but fails its health check, as the end-to-end run's v3 does.
var healthStatus = "200"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hello: "+err.Error())
		os.Exit(1)
	}
}

// Config is the service's configuration, from the environment.
type Config struct {
	// Port to listen on ($PORT). Default: 8080.
	Port int
	// Drain bounds how long in-flight requests may take after SIGTERM
	// ($DRAIN_TIMEOUT). Default: 10s.
	Drain time.Duration
	// ClockInterval is the heartbeat period of `hello clock`
	// ($CLOCK_INTERVAL). Default: 30s.
	ClockInterval time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Port: 8080, Drain: 10 * time.Second, ClockInterval: 30 * time.Second}
}

func loadConfig(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	if v := getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return c, fmt.Errorf("PORT %q: not a port number", v)
		}
		c.Port = p
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"DRAIN_TIMEOUT", &c.Drain}, {"CLOCK_INTERVAL", &c.ClockInterval}} {
		if v := getenv(d.name); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return c, fmt.Errorf("%s %q: not a positive duration like 10s", d.name, v)
			}
			*d.dst = t
		}
	}
	return c, nil
}

// run runs the web server, or the clock with args ["clock"], until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	log := slog.New(slog.NewTextHandler(stdout, nil))
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	switch {
	case len(args) == 0 || args[0] == "web":
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.Port))
		if err != nil {
			return err
		}
		return serve(ctx, ln, cfg, log)
	case args[0] == "clock":
		return clock(ctx, cfg, log)
	case args[0] == "version" || args[0] == "--version":
		fmt.Fprintln(stdout, version)
		return nil
	default:
		return fmt.Errorf("unknown command %q (want web, clock or version)", args[0])
	}
}

// handler serves / and /healthz. /?sleep=DURATION delays the answer, to
// exercise draining.
func handler() http.Handler {
	mux := http.NewServeMux()
	status, err := strconv.Atoi(healthStatus)
	if err != nil || status < 100 || status > 599 {
		status = http.StatusInternalServerError
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if status != http.StatusOK {
			http.Error(w, "unhealthy: built with health status "+healthStatus, status)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("sleep"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > time.Minute {
				http.Error(w, "sleep: want a duration up to 1m", http.StatusBadRequest)
				return
			}
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "hello %s\n", version)
	})
	return mux
}

// serve serves on ln until ctx ends, then stops accepting and waits up to
// cfg.Drain for in-flight requests.
func serve(ctx context.Context, ln net.Listener, cfg Config, log *slog.Logger) error {
	srv := &http.Server{Handler: handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "version", version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("draining", "timeout", cfg.Drain)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// clock logs a heartbeat every cfg.ClockInterval until ctx ends.
func clock(ctx context.Context, cfg Config, log *slog.Logger) error {
	t := time.NewTicker(cfg.ClockInterval)
	defer t.Stop()
	log.Info("clock started", "interval", cfg.ClockInterval, "version", version)
	for {
		select {
		case <-ctx.Done():
			log.Info("clock stopped")
			return nil
		case now := <-t.C:
			log.Info("tick", "at", now.UTC().Format(time.RFC3339))
		}
	}
}
