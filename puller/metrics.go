package puller

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the agent's Prometheus metrics, in their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	version   *prometheus.GaugeVec
	lastCheck *prometheus.GaugeVec
	duration  *prometheus.HistogramVec
	failures  *prometheus.CounterVec
	lockWait  *prometheus.HistogramVec

	checkOK    *prometheus.GaugeVec
	validUntil *prometheus.GaugeVec
	state      *prometheus.GaugeVec
	halted     *prometheus.GaugeVec
	step       *prometheus.HistogramVec
	held       *prometheus.GaugeVec
	canary     *prometheus.GaugeVec

	mu       sync.Mutex
	versions map[[2]string]string
}

// NewMetrics registers the agent's metrics in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aptfleet_puller_version_info",
			Help: "The installed version of each app (value 1).",
		}, []string{"app", "env", "version"}),
		lastCheck: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aptfleet_puller_last_check_timestamp_seconds",
			Help: "Unix time of the last repository check.",
		}, []string{"app", "env"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aptfleet_puller_deploy_duration_seconds",
			Help:    "Time from holding a deploy slot to healthy (or failed).",
			Buckets: []float64{1, 5, 10, 20, 30, 60, 120, 300, 600},
		}, []string{"app", "env", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aptfleet_puller_deploy_failures_total",
			Help: "Deploys that failed on this host.",
		}, []string{"app", "env"}),
		lockWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aptfleet_puller_lock_wait_seconds",
			Help:    "Time spent waiting for a deploy slot.",
			Buckets: []float64{0.01, 0.1, 1, 5, 15, 30, 60, 120, 300, 900},
		}, []string{"app", "env"}),
		checkOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aptfleet_puller_last_check_success_timestamp_seconds",
			Help: "Unix time of the last repository check that succeeded (the index unchanged, or read and verified).",
		}, []string{"app", "env"}),
		validUntil: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aptfleet_puller_index_valid_until_timestamp_seconds",
			Help: "Valid-Until of the InRelease the host last accepted, as Unix time (absent when it has none).",
		}, []string{"app", "env"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aptfleet_puller_host_state",
			Help: "1 for the state this host's record is in (ok, waiting, deploying, rolling_back, failed, bootstrapping, held), 0 for the others.",
		}, []string{"app", "env", "state"}),
		halted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aptfleet_puller_rollout_halted",
			Help: "1 while the newest version in the dist's index is marked broken for the app/env (its rollout halted).",
		}, []string{"app", "env"}),
		step: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aptfleet_puller_step_duration_seconds",
			Help:    "Time each deploy step took (drain, install, restart, validate, health, restore).",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"app", "env", "step"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aptfleet_puller_held",
			Help: "1 for each hold keeping this host from starting a due deploy (paused, quarantined, outside window, waiting for canary), 0 for the others.",
		}, []string{"app", "env", "kind"}),
		canary: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aptfleet_puller_canary",
			Help: "1 while this host is a canary in the given stage (deploying, baking, awaiting_promotion), 0 for the others.",
		}, []string{"app", "env", "stage"}),
		versions: map[[2]string]string{},
	}
	m.Registry.MustRegister(m.version, m.lastCheck, m.duration, m.failures, m.lockWait,
		m.checkOK, m.validUntil, m.state, m.halted, m.step, m.held, m.canary,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) setVersion(app, env, v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{app, env}
	if old, ok := m.versions[k]; ok {
		m.version.DeleteLabelValues(app, env, old)
	}
	m.versions[k] = v
	if v != "" {
		m.version.WithLabelValues(app, env, v).Set(1)
	}
}

// hostStates are the values aptfleet_puller_host_state takes.
var hostStates = []string{"ok", "waiting", "deploying", "rolling_back", "failed", "bootstrapping", "held"}

// setState sets app/env's host state gauge to state (1) and the others to 0.
func (m *Metrics) setState(app, env, state string) {
	for _, s := range hostStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(app, env, s).Set(v)
	}
}

// holdKinds are the values of aptfleet_puller_held's kind label.
var holdKinds = []HoldKind{HoldPause, HoldQuarantine, HoldWindow, HoldCanary}

// setHeld sets app/env's hold gauges: 1 for the kinds in holds.
func (m *Metrics) setHeld(app, env string, holds []Hold) {
	for _, k := range holdKinds {
		v := 0.0
		for _, h := range holds {
			if h.Kind == k {
				v = 1
			}
		}
		m.held.WithLabelValues(app, env, string(k)).Set(v)
	}
}

// canaryStages are the values of aptfleet_puller_canary's stage label.
var canaryStages = []string{"deploying", "baking", "awaiting_promotion"}

// setCanary sets app/env's canary gauge to stage (1), "" for none.
func (m *Metrics) setCanary(app, env, stage string) {
	for _, s := range canaryStages {
		v := 0.0
		if s == stage {
			v = 1
		}
		m.canary.WithLabelValues(app, env, s).Set(v)
	}
}

// setHalted records whether app/env's newest version is marked broken.
func (m *Metrics) setHalted(app, env string, halted bool) {
	v := 0.0
	if halted {
		v = 1
	}
	m.halted.WithLabelValues(app, env).Set(v)
}

// checked records a repository check that succeeded at t.
func (m *Metrics) checked(app, env string, t time.Time) {
	m.checkOK.WithLabelValues(app, env).Set(float64(t.Unix()))
}

// setValidUntil records the accepted InRelease's Valid-Until (zero: none).
func (m *Metrics) setValidUntil(app, env string, t time.Time) {
	if t.IsZero() {
		m.validUntil.DeleteLabelValues(app, env)
		return
	}
	m.validUntil.WithLabelValues(app, env).Set(float64(t.Unix()))
}

// observeStep records how long one deploy step took.
func (m *Metrics) observeStep(app, env, step string, d time.Duration) {
	m.step.WithLabelValues(app, env, step).Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
