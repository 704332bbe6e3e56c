// Package web serves Tidemark's HTTP API: the Prometheus API under every
// organization's base URL and at the root, change events, and operations.
package web

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/grafana/regexp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/promql"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/sources"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
	"github.com/tidemark/tidemark/storage/metadata"
	"github.com/tidemark/tidemark/ui"
)

// Options configures the HTTP API.
type Options struct {
	Version string
	// MaxRequestBytes bounds request bodies (413 beyond it).
	MaxRequestBytes int64
	QueryTimeout    time.Duration
	LookbackDelta   time.Duration
	MaxSamples      int
	// CORSOrigin is the Origin regexp the Prometheus API allows for
	// browsers; nil: CORS is off.
	CORSOrigin *regexp.Regexp
	// TokenRequestsPerSecond bounds each token's request rate (0: none);
	// TokenBurst is how many requests may come at once.
	TokenRequestsPerSecond float64
	TokenBurst             int
	// TokenLimitRejected counts the requests the token limit refused; nil:
	// not counted.
	TokenLimitRejected prometheus.Counter
	// Query configures the query path: splitting, sharding and the
	// results cache (see package query).
	Query QueryOptions

	// Pprof serves Go's profiles under /debug/pprof/ to admin tokens.
	Pprof bool

	State   State
	Backend storage.Backend
	// Remote, when set, answers the Prometheus API's reads and remote
	// writes from the remote engine the Backend writes to (see
	// storage/remote): PromQL runs in the engine.
	Remote RemoteAPI
	// QueryEngine, when set, runs Tidemark's own queries (the canary
	// judge); nil: Prometheus's engine over Backend.
	QueryEngine promql.QueryEngine
	Events      *events.Service
	// Impact scores events on demand (POST .../impact); nil: the route
	// is not served.
	Impact ImpactScorer
	Rules  RulesSource
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Flags are the server's flags, for /api/v1/status/flags.
	Flags map[string]string
	// Retention is the storage's retention, for /api/v1/status/runtimeinfo.
	Retention time.Duration
	// Metadata keeps the metric metadata writers send; nil: a store with
	// the default limit.
	Metadata *metadata.Store
	// Hooks returns an organization's webhook receiver settings; nil: none
	// (GitHub, GitLab and LaunchDarkly deliveries are refused, and there
	// are no generic hooks).
	Hooks func(org string) sources.Settings
}

// State is what the HTTP API reads and writes of the state database.
type State interface {
	state.Tokens
	state.Orgs
	state.RuleStore
}

// RemoteAPI is a remote engine's side of the Prometheus API, for the
// organization in a request's context.
type RemoteAPI interface {
	// ReadHandler answers reads whose path is /api/v1/...
	ReadHandler() http.Handler
	// WriteHandler takes remote-write requests.
	WriteHandler() http.Handler
}

// Handler is Tidemark's HTTP handler.
type Handler struct {
	logger *slog.Logger
	opts   Options
	mux    *http.ServeMux
	auth   *authenticator
	ready  atomic.Bool
	now    func() time.Time

	// engine and queryable run PromQL over the organization in a
	// request's context (see storage.WithOrg).
	engine    promql.QueryEngine
	queryable storage.Routed

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// orgBase is the Prometheus base URL of an organization.
const orgBase = "/api/v4/organizations/{org}/prometheus"

// New returns the HTTP handler. It answers 503 on every route but
// /-/healthy and /metrics until SetReady.
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) *Handler {
	h := &Handler{
		logger: logger,
		opts:   opts,
		mux:    http.NewServeMux(),
		auth:   newAuthenticator(logger, opts.State),
		now:    time.Now,
	}
	f := promauto.With(reg)
	rejected := opts.TokenLimitRejected
	if rejected == nil {
		rejected = prometheus.NewCounter(prometheus.CounterOpts{Name: "unused"})
	}
	h.auth.limiter = newTokenLimiter(opts.TokenRequestsPerSecond, opts.TokenBurst, rejected)
	h.requests = f.NewCounterVec(prometheus.CounterOpts{
		Name: "tidemark_http_requests_total",
		Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	h.duration = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:                           "tidemark_http_request_duration_seconds",
		Help:                           "HTTP request latency by route.",
		Buckets:                        prometheus.DefBuckets,
		NativeHistogramBucketFactor:    1.1,
		NativeHistogramMaxBucketNumber: 100,
	}, []string{"route"})

	po := promAPIOptions{
		Version:       opts.Version,
		QueryTimeout:  opts.QueryTimeout,
		LookbackDelta: opts.LookbackDelta,
		MaxSamples:    opts.MaxSamples,
		Rules:         opts.Rules,
		CORSOrigin:    opts.CORSOrigin,
		Query:         opts.Query,
		Backend:       opts.Backend,
	}
	localEngine, resultsCache := newEngine(logger, reg, po)
	h.engine = localEngine
	if opts.QueryEngine != nil {
		h.engine = opts.QueryEngine
	}
	h.queryable = storage.Routed{Backend: opts.Backend}
	surface := newPromSurface(opts, h.queryable, opts.Gatherer)
	promAPI := newPromAPI(logger, reg, localEngine, h.queryable, h.readyGate, po, surface)
	orgPrefix := func(r *http.Request) int {
		return len("/api/v4/organizations/" + r.PathValue("org") + "/prometheus")
	}
	rootPrefix := func(*http.Request) int { return 0 }
	for _, rt := range promRoutes {
		var api http.Handler = promAPI
		switch {
		case opts.Remote != nil && rt.remote == remoteRead:
			api = h.readyGate(opts.Remote.ReadHandler().ServeHTTP)
		case opts.Remote != nil && rt.remote == remoteWrite:
			api = h.readyGate(remoteWrite1(opts.Remote.WriteHandler(), storageStatus(promAPI)).ServeHTTP)
		case rt.scope == state.ScopeWrite:
			api = storageStatus(promAPI)
		}
		if rt.remote == remoteWrite {
			api = surface.writeRoute(opts.Remote == nil, api)
		}
		if rt.path == "/query_range" && opts.Remote == nil && resultsCache != nil {
			cors := opts.CORSOrigin
			if cors == nil {
				cors = noCORS
			}
			api = &keptResponses{cache: resultsCache, api: api, cors: cors, maxBody: int(opts.Query.ResultsCacheMaxBytes / 4)}
		}
		h.handle(rt.method+" "+orgBase+"/api/v1"+rt.path, h.auth.require(rt.scope, promError, underAPIv1(orgPrefix, api)))
		h.handle(rt.method+" /api/v1"+rt.path, h.auth.require(rt.scope, promError, underAPIv1(rootPrefix, api)))
	}

	ev := &eventsAPI{svc: opts.Events, now: h.now}
	const eventsPath = "/api/v4/organizations/{org}/change_events"
	h.handle("PUT "+eventsPath, h.auth.require(state.ScopeWrite, plainError, h.gated(h.api(plainError, ev.write))))
	h.handle("POST "+eventsPath, h.auth.require(state.ScopeWrite, plainError, h.gated(h.api(plainError, ev.write))))
	h.handle("GET "+eventsPath, h.auth.require(state.ScopeRead, plainError, h.gated(h.api(plainError, ev.list))))

	h.handle("POST /api/annotations", h.auth.require(state.ScopeWrite, plainError, h.gated(h.api(plainError, ev.postAnnotation))))
	h.handle("GET /api/annotations", h.auth.require(state.ScopeRead, plainError, h.gated(h.api(plainError, ev.getAnnotations))))
	h.handle("POST /api/v4/organizations/{org}/hooks/flagger", h.auth.require(state.ScopeWrite, plainError, h.gated(h.api(plainError, ev.flaggerHook))))
	h.handle("POST /api/v4/organizations/{org}/hooks/argo-rollouts", h.auth.require(state.ScopeWrite, plainError, h.gated(h.api(plainError, ev.argoRolloutsHook))))

	h.handle("POST /api/v4/oauth/access_token", h.api(plainError, h.accessToken))

	h.handle("GET /-/healthy", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("Tidemark is Healthy.\n"))
	}))
	h.handle("GET /-/ready", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !h.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("Service Unavailable\n"))
			return
		}
		w.Write([]byte("Tidemark is Ready.\n"))
	}))
	h.handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	h.registerRuler()
	h.registerAnalysis()
	if opts.Pprof {
		h.registerPprof()
	}
	h.registerSources(ev)
	h.registerFederate()
	h.registerTokens()
	h.registerImpact()
	h.handle("/", ui.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainError(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})))
	return h
}

// SetReady opens the readiness gate.
func (h *Handler) SetReady() { h.ready.Store(true) }

func (h *Handler) readyGate(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.ready.Load() {
			promError(w, http.StatusServiceUnavailable, "Service Unavailable: Tidemark is starting")
			return
		}
		f(w, r)
	}
}

func (h *Handler) gated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.ready.Load() {
			plainError(w, http.StatusServiceUnavailable, "Tidemark is starting; retry later")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// handle registers a route with its request metrics.
func (h *Handler) handle(pattern string, next http.Handler) {
	counter := h.requests.MustCurryWith(prometheus.Labels{"route": pattern})
	obs := h.duration.WithLabelValues(pattern)
	h.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		counter.WithLabelValues(strconv.Itoa(sw.code)).Inc()
		obs.Observe(time.Since(start).Seconds())
	}))
}

// ServeHTTP implements http.Handler. Bodies larger than the limit are
// refused with 413 before any handler reads them.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if limit := h.opts.MaxRequestBytes; limit > 0 {
		if r.ContentLength > limit {
			plainError(w, http.StatusRequestEntityTooLarge, tooLarge(limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	h.mux.ServeHTTP(w, r)
}

type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush supports streaming handlers.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
