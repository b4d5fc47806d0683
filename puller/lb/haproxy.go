package lb

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/puller"
)

// HAProxyConfig addresses one server of an HAProxy backend.
type HAProxyConfig struct {
	// Socket is the runtime API ("stats socket ... level admin"): a unix
	// socket path or "tcp://HOST:PORT". Default "/run/haproxy/admin.sock".
	Socket string
	// Backend is the backend's name. Required.
	Backend string
	// Server is the server's name within Backend. Required.
	Server string
	// DrainTime is the longest wait for the server's sessions to end.
	// Default 30s.
	DrainTime time.Duration
	// RestoreTimeout is the longest wait, after "state ready", for HAProxy's
	// own health checks to report the server UP. Default 60s.
	RestoreTimeout time.Duration
	// Poll is the interval between two reads of the server's state.
	// Default 250ms.
	Poll time.Duration
	// Logger receives a warning when the drain time passes with sessions
	// left. Default slog.Default().
	Logger *slog.Logger
}

// HAProxy drains a server through HAProxy's runtime API.
type HAProxy struct {
	cfg     HAProxyConfig
	network string
	address string
	log     *slog.Logger
}

// ErrHAProxy: the runtime API refused a command.
var ErrHAProxy = errors.New("lb: haproxy refused")

// NewHAProxy validates cfg and returns the strategy; zero fields take their
// defaults.
func NewHAProxy(cfg HAProxyConfig) (*HAProxy, error) {
	if cfg.Socket == "" {
		cfg.Socket = "/run/haproxy/admin.sock"
	}
	if cfg.DrainTime == 0 {
		cfg.DrainTime = 30 * time.Second
	}
	if cfg.RestoreTimeout == 0 {
		cfg.RestoreTimeout = 60 * time.Second
	}
	if cfg.Poll == 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	h := &HAProxy{cfg: cfg, network: "unix", address: cfg.Socket, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	if addr, ok := strings.CutPrefix(cfg.Socket, "tcp://"); ok {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("haproxy socket %q: %w", cfg.Socket, err)
		}
		h.network, h.address = "tcp", addr
	}
	for _, f := range []struct{ name, v string }{{"backend", cfg.Backend}, {"server", cfg.Server}} {
		if f.v == "" || strings.ContainsAny(f.v, " \t\n;/") {
			return nil, fmt.Errorf("haproxy %s: %q is not a valid name", f.name, f.v)
		}
	}
	return h, nil
}

// ServerStat is the part of "show stat" Drain and Restore look at.
type ServerStat struct {
	Status   string // "UP", "DOWN", "DRAIN", "MAINT", "no check", "UP 1/3"...
	Sessions int    // scur: current sessions
	Queued   int    // qcur: requests queued for this server
}

// Drain sets the server to drain (no new connections, existing ones
// continue) and waits until it has no session and no queued request, or
// until DrainTime passes.
func (h *HAProxy) Drain(ctx context.Context) error {
	if err := h.setState(ctx, "drain"); err != nil {
		return err
	}
	deadline := time.Now().Add(h.cfg.DrainTime)
	for {
		st, err := h.Stat(ctx)
		if err != nil {
			return err
		}
		if st.Sessions == 0 && st.Queued == 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			h.log.Warn("drain time passed with sessions left", "backend", h.cfg.Backend, "server", h.cfg.Server,
				"sessions", st.Sessions, "queued", st.Queued, "drain_time", h.cfg.DrainTime)
			return nil
		}
		if err := sleep(ctx, min(h.cfg.Poll, time.Until(deadline))); err != nil {
			return fmt.Errorf("drain %s/%s: %w", h.cfg.Backend, h.cfg.Server, err)
		}
	}
}

// Restore sets the server back to ready and waits until HAProxy reports it
// UP (or "no check" when the server has no health check).
func (h *HAProxy) Restore(ctx context.Context) error {
	if err := h.setState(ctx, "ready"); err != nil {
		return err
	}
	deadline := time.Now().Add(h.cfg.RestoreTimeout)
	for {
		st, err := h.Stat(ctx)
		if err != nil {
			return err
		}
		if st.Status == "no check" || st.Status == "UP" || strings.HasPrefix(st.Status, "UP ") {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("restore %s/%s: still %s after %s", h.cfg.Backend, h.cfg.Server, st.Status, h.cfg.RestoreTimeout)
		}
		if err := sleep(ctx, min(h.cfg.Poll, time.Until(deadline))); err != nil {
			return fmt.Errorf("restore %s/%s: %w", h.cfg.Backend, h.cfg.Server, err)
		}
	}
}

// Disable puts the server in maintenance: it takes no traffic and is not
// health-checked until Restore (for a host that is gone, not one that
// restarts: that is Drain).
func (h *HAProxy) Disable(ctx context.Context) error {
	return h.setState(ctx, "maint")
}

// Stat reads the server's row of "show stat".
func (h *HAProxy) Stat(ctx context.Context) (ServerStat, error) {
	rows, err := h.showStat(ctx)
	if err != nil {
		return ServerStat{}, err
	}
	row, ok := rows[h.cfg.Server]
	if !ok {
		return ServerStat{}, fmt.Errorf("haproxy show stat: %w: no server %s/%s", ErrHAProxy, h.cfg.Backend, h.cfg.Server)
	}
	st := ServerStat{Status: row["status"]}
	st.Sessions, _ = strconv.Atoi(row["scur"])
	st.Queued, _ = strconv.Atoi(row["qcur"])
	return st, nil
}

// Counters reads the counters of every server of the backend, keyed by
// server name, for the canary analysis: req_tot (stot when the backend does
// not count HTTP requests), hrsp_5xx, and rtime (ttime when rtime is 0).
func (h *HAProxy) Counters(ctx context.Context) (map[string]puller.ServerCounters, error) {
	rows, err := h.showStat(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]puller.ServerCounters, len(rows))
	for name, row := range rows {
		num := func(col string) int64 { n, _ := strconv.ParseInt(row[col], 10, 64); return n }
		c := puller.ServerCounters{Status: row["status"], Requests: num("req_tot"), Errors: num("hrsp_5xx"), LatencyMs: float64(num("rtime"))}
		if row["req_tot"] == "" {
			c.Requests = num("stot")
		}
		if c.LatencyMs == 0 {
			c.LatencyMs = float64(num("ttime"))
		}
		out[name] = c
	}
	return out, nil
}

var _ puller.LoadStats = (*HAProxy)(nil)

// showStat returns the rows of the backend's servers in "show stat", each a
// map of column name to value, keyed by server name.
func (h *HAProxy) showStat(ctx context.Context) (map[string]map[string]string, error) {
	out, err := h.command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("haproxy show stat: %w", err)
	}
	col := map[string]int{}
	for i, name := range header {
		col[name] = i
	}
	for _, name := range []string{"pxname", "svname", "qcur", "scur", "status"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("haproxy show stat: no %s column", name)
		}
	}
	rows := map[string]map[string]string{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("haproxy show stat: %w", err)
		}
		sv := rec[col["svname"]]
		if len(rec) < len(header) || rec[col["pxname"]] != h.cfg.Backend || sv == "BACKEND" || sv == "FRONTEND" {
			continue
		}
		row := make(map[string]string, len(header))
		for i, name := range header {
			row[name] = rec[i]
		}
		rows[sv] = row
	}
}

func (h *HAProxy) setState(ctx context.Context, state string) error {
	cmd := fmt.Sprintf("set server %s/%s state %s", h.cfg.Backend, h.cfg.Server, state)
	out, err := h.command(ctx, cmd)
	if err != nil {
		return err
	}
	// Success is an empty answer; anything else is HAProxy's refusal.
	if msg := strings.TrimSpace(out); msg != "" {
		return fmt.Errorf("haproxy %q: %w: %s", cmd, ErrHAProxy, strings.Join(strings.Fields(msg), " "))
	}
	return nil
}

// command sends one command in the runtime API's non-interactive mode: the
// answer runs until HAProxy closes the connection.
func (h *HAProxy) command(ctx context.Context, cmd string) (string, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, h.network, h.address)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API %s: %w", h.cfg.Socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy %q: %w", cmd, err)
	}
	var b strings.Builder
	if _, err := io.Copy(&b, bufio.NewReader(conn)); err != nil {
		return "", fmt.Errorf("haproxy %q: %w", cmd, err)
	}
	return b.String(), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
