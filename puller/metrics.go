package puller

import (
	"net/http"
	"sync"

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
		versions: map[[2]string]string{},
	}
	m.Registry.MustRegister(m.version, m.lastCheck, m.duration, m.failures, m.lockWait,
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

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
