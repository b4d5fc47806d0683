package fleetview

import (
	"bytes"
	"context"
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/puller/redisstate"
)

//go:embed page.html
var pageHTML string

// Server serves the live page: GET / is the whole page, GET /fleet the part
// that changes (the page's script fetches it every Refresh and swaps it in),
// GET /fleet.json the view as JSON. It only reads.
type Server struct {
	State   *redisstate.Store
	Options Options
	// Refresh is how often the page updates itself. Default 1s.
	Refresh time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	Log *slog.Logger
}

var funcs = template.FuncMap{
	"clean": Clean,
	"ago":   Ago,
	"pct": func(n, of int) int {
		if of <= 0 {
			return 0
		}
		return min(100, n*100/of)
	},
	"live": func(e Env) int {
		n := 0
		for _, h := range e.Hosts {
			if h.Live {
				n++
			}
		}
		return n
	},
	"id": func(s ...string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
				return r
			}
			return '_'
		}, strings.Join(s, "-"))
	},
	"stamp":    stamp,
	"rollouts": lastRollouts,
	"describe": Describe,
	"ms":       func(d time.Duration) int64 { return d.Milliseconds() },
}

var page = template.Must(template.New("page").Funcs(funcs).Parse(pageHTML))

// lastRollouts is the newest n rollouts of the history, newest first.
func lastRollouts(entries []Entry, n int) []Past {
	past := Rollouts(entries)
	out := make([]Past, 0, n)
	for i := len(past) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, past[i])
	}
	return out
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "read-only: GET only", http.StatusMethodNotAllowed)
		return
	}
	var tmpl string
	switch r.URL.Path {
	case "/":
		tmpl = "page"
	case "/fleet":
		tmpl = "fleet"
	case "/fleet.json":
	default:
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	opts := s.Options
	if opts.History == 0 {
		opts.History = 200
	}
	now := s.now()
	envs, err := Read(ctx, s.State, nil, now, opts)
	data := struct {
		Envs    []Env
		Now     time.Time
		Err     string
		Refresh time.Duration
	}{envs, now, "", s.Refresh}
	if data.Refresh <= 0 {
		data.Refresh = time.Second
	}
	if err != nil {
		data.Err = err.Error()
		if s.Log != nil {
			s.Log.Warn("fleet view: read failed", "err", err)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'")
	if tmpl == "" {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
		}
		JSON(w, envs)
		return
	}
	var buf bytes.Buffer
	if err := page.ExecuteTemplate(&buf, tmpl, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}
