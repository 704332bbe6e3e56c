package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/grafana/regexp"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/tidemark/tidemark/query"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// promRoute is a route of the Prometheus HTTP API that Tidemark serves.
type promRoute struct {
	method string
	path   string // under /api/v1
	scope  state.Scope
	// remote is how the route is served when samples are in a remote
	// engine: proxied to its reads or its remote write, or (none) by
	// Prometheus's API here.
	remote remoteKind
}

type remoteKind int

const (
	local remoteKind = iota
	remoteRead
	remoteWrite
)

// promRoutes are the Prometheus API routes of DESIGN.md, served under every
// base URL: /api/v4/organizations/{org}/prometheus and the root.
var promRoutes = []promRoute{
	{"GET", "/query", state.ScopeRead, remoteRead},
	{"POST", "/query", state.ScopeRead, remoteRead},
	{"GET", "/query_range", state.ScopeRead, remoteRead},
	{"POST", "/query_range", state.ScopeRead, remoteRead},
	{"GET", "/series", state.ScopeRead, remoteRead},
	{"POST", "/series", state.ScopeRead, remoteRead},
	{"GET", "/labels", state.ScopeRead, remoteRead},
	{"POST", "/labels", state.ScopeRead, remoteRead},
	{"GET", "/label/{name}/values", state.ScopeRead, remoteRead},
	{"GET", "/metadata", state.ScopeRead, remoteRead},
	{"GET", "/status/buildinfo", state.ScopeRead, local},
	// Exemplars, query formatting and parsing, the organization's
	// cardinality, flags, runtime, and remote read (promsurface.go).
	{"GET", "/query_exemplars", state.ScopeRead, remoteRead},
	{"POST", "/query_exemplars", state.ScopeRead, remoteRead},
	{"GET", "/format_query", state.ScopeRead, local},
	{"POST", "/format_query", state.ScopeRead, local},
	{"GET", "/parse_query", state.ScopeRead, local},
	{"POST", "/parse_query", state.ScopeRead, local},
	{"GET", "/status/tsdb", state.ScopeRead, local},
	{"GET", "/status/flags", state.ScopeRead, local},
	{"GET", "/status/runtimeinfo", state.ScopeRead, local},
	{"POST", "/read", state.ScopeRead, remoteRead},
	{"GET", "/rules", state.ScopeRead, local},
	{"GET", "/alerts", state.ScopeRead, local},
	{"POST", "/write", state.ScopeWrite, remoteWrite},
	// OTLP is translated here by Prometheus's handler and sent on as
	// remote write, so any engine that takes remote write takes it.
	{"POST", "/otlp/v1/metrics", state.ScopeWrite, local},
}

// RulesSource gives the rule groups and alerting rules of the organization
// in the context; nil means there are none.
type RulesSource func(ctx context.Context) v1.RulesRetriever

// promAPIOptions configures the Prometheus API.
type promAPIOptions struct {
	Version       string
	QueryTimeout  time.Duration
	LookbackDelta time.Duration
	MaxSamples    int
	Rules         RulesSource
	// CORSOrigin is the Origin regexp CORS allows; nil: none.
	CORSOrigin *regexp.Regexp
	Query      QueryOptions
	// Backend is the storage queries read; the results cache is on only
	// if it tells of its appends (query.AppendNotifier).
	Backend storage.Backend
}

// QueryOptions configures the query path (see package query).
type QueryOptions struct {
	// Parallelism is how many sub-queries of one query run at once:
	// 0 means GOMAXPROCS; 1 turns time splitting off.
	Parallelism int
	// Shards is how many series shards sum, min, max, count and group
	// are evaluated in; 0 or 1 turns sharding off.
	Shards int
	// ResultsCacheMaxBytes bounds the range query results cache; 0 turns
	// it off. The cache is used only over a Backend that tells of every
	// append (query.WatchAppends), so that no append leaves a stale
	// result behind.
	ResultsCacheMaxBytes int64
}

// noCORS matches no Origin: browsers get no Access-Control-Allow-Origin.
var noCORS = regexp.MustCompile(`^$`)

// newEngine returns the PromQL engine every query of every organization
// runs on: Prometheus's, wrapped by the query path that splits, shards and
// caches, and its results cache (nil: none).
func newEngine(logger *slog.Logger, reg prometheus.Registerer, o promAPIOptions) (promql.QueryEngine, *query.ResultsCache) {
	inner := promql.NewEngine(promql.EngineOpts{
		Logger:               logger.With("component", "query engine"),
		Reg:                  reg,
		MaxSamples:           o.MaxSamples,
		Timeout:              o.QueryTimeout,
		LookbackDelta:        o.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return time.Minute.Milliseconds()
		},
	})
	qo := query.Options{
		Parallelism: o.Query.Parallelism,
		Split:       o.Query.Parallelism != 1,
		Shards:      o.Query.Shards,
	}
	if o.Query.ResultsCacheMaxBytes > 0 {
		if n, ok := o.Backend.(query.AppendNotifier); ok {
			qo.Cache = query.NewResultsCache(reg, query.CacheOptions{MaxBytes: o.Query.ResultsCacheMaxBytes})
			n.Subscribe(qo.Cache.Invalidate)
		} else {
			logger.Warn("query results cache off: the storage does not tell of its appends")
		}
	}
	return query.NewEngine(reg, inner, qo), qo.Cache
}

// newPromAPI returns Prometheus's own v1 API over every organization's
// storage, registered on a router under /api/v1.
func newPromAPI(logger *slog.Logger, reg prometheus.Registerer, engine promql.QueryEngine, routed storage.Routed, ready func(http.HandlerFunc) http.HandlerFunc, o promAPIOptions, s promSurface) http.Handler {
	cfg := config.DefaultConfig
	rulesFor := func(ctx context.Context) v1.RulesRetriever {
		if o.Rules != nil {
			if rr := o.Rules(ctx); rr != nil {
				return rr
			}
		}
		return noRules{}
	}
	cors := o.CORSOrigin
	if cors == nil {
		cors = noCORS
	}
	api := v1.NewAPI(
		engine, routed, s.appendable, s.exemplars, // engine, queryable, appendable (recording metadata), exemplars
		func(context.Context) v1.ScrapePoolsRetriever { return noTargets{} },
		s.targets, // one target per organization, holding the metadata writers sent
		func(context.Context) v1.AlertmanagerRetriever { return noAlertmanagers{} },
		func() config.Config { return cfg },
		s.flags,
		v1.GlobalURLOptions{}, // global URL options
		ready,
		s.stats, "", // the organization's TSDB statistics, no data directory
		false, false, 0, // admin API, search API, search limit
		logger.With("component", "api"),
		rulesFor,
		remoteReadSampleLimit, remoteReadConcurrency, remoteReadMaxBytesInFrame,
		false, // not an agent
		cors,
		s.runtime,
		&v1.PrometheusVersion{Version: o.Version, GoVersion: runtime.Version()},
		nil, nil, // no notifications
		s.stats, reg, // gatherer (the organization's head chunks for status/tsdb), registerer
		nil,                                                                                      // default stats renderer
		true, remoteapi.MessageTypes{remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType}, // remote write 1.0 and 2.0
		true, false, false, // OTLP receiver; no delta conversion, no native delta
		o.LookbackDelta,
		false, true, // no type-and-unit labels; pass remote write 2.0 metadata to the appendable
		nil, nil, // error code override, feature registry
		v1.OpenAPIOptions{},
		nil,   // default PromQL parser
		false, // query cost
		o.QueryTimeout,
	)
	router := route.New()
	api.Register(router.WithPrefix("/api/v1"))
	return s.stats.serve(router)
}

// underAPIv1 serves h with the request path rewritten to start at /api/v1,
// dropping the base URL prefix the route was matched under.
func underAPIv1(prefixLen func(*http.Request) int, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := prefixLen(r)
		r2 := new(http.Request)
		*r2 = *r
		r2.URL = new(url.URL)
		*r2.URL = *r.URL
		r2.URL.Path = r.URL.Path[n:]
		r2.URL.RawPath = ""
		if !strings.HasPrefix(r2.URL.Path, "/api/v1/") {
			promError(w, http.StatusNotFound, "not found")
			return
		}
		h.ServeHTTP(w, r2)
	})
}

type noTargets struct{}

func (noTargets) ScrapePools() []string                                 { return nil }
func (noTargets) TargetsActive() map[string][]*scrape.Target            { return nil }
func (noTargets) TargetsDropped() map[string][]*scrape.Target           { return nil }
func (noTargets) TargetsDroppedCounts() map[string]int                  { return nil }
func (noTargets) ScrapePoolConfig(string) (*config.ScrapeConfig, error) { return nil, nil }

type noAlertmanagers struct{}

func (noAlertmanagers) Alertmanagers() []*url.URL        { return nil }
func (noAlertmanagers) DroppedAlertmanagers() []*url.URL { return nil }

type noRules struct{}

func (noRules) RuleGroups() []*rules.Group           { return nil }
func (noRules) AlertingRules() []*rules.AlertingRule { return nil }
