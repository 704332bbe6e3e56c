// Package remote keeps every organization's samples in a Prometheus-
// compatible multi-tenant engine (Cortex, Mimir, Thanos Receive, ...):
// writes go to its remote-write endpoint and reads to its Prometheus API,
// each with the organization's tenant in a header (X-Scope-OrgID), so that
// Tidemark itself holds no samples and any number of replicas can serve.
//
// An organization's storage.Org writes through Prometheus's remote-write
// client (sending at Prepare or Commit) and reads through its remote-read
// client; the Prometheus API's reads are proxied to the engine's API
// (ReadHandler), so PromQL runs where the data is, and its client writes are
// passed through as they came (WriteHandler). Tidemark's own queries — rule
// evaluation, the canary judge — go to the engine's query API through
// QueryEngine.
package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	promremote "github.com/prometheus/prometheus/storage/remote"

	"github.com/tidemark/tidemark/storage"
)

// Options configures the remote backend.
type Options struct {
	// WriteURL is the engine's remote-write endpoint, e.g.
	// http://cortex:9009/api/v1/push.
	WriteURL string
	// QueryURL is the base of the engine's Prometheus API, e.g.
	// http://cortex:9009/prometheus (its /api/v1/query, /api/v1/read, ...).
	QueryURL string
	// TenantHeader carries an organization's tenant to the engine
	// (X-Scope-OrgID for Cortex and Mimir).
	TenantHeader string
	// Tenant is an organization's tenant; nil: its slug.
	Tenant func(org string) string
	// Timeout bounds one request to the engine.
	Timeout time.Duration
	// RetryAfter is the Retry-After of a 503 answered when the engine
	// cannot be reached.
	RetryAfter time.Duration
}

// Backend is a storage.Backend on a remote engine. It is safe for
// concurrent use.
type Backend struct {
	logger   *slog.Logger
	opts     Options
	writeURL *url.URL
	queryURL *url.URL
	http     *http.Client

	mtx  sync.Mutex
	orgs map[string]*org

	engineOnce sync.Once
	engine     *queryEngine

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New returns a backend on the engine opts names.
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) (*Backend, error) {
	if opts.TenantHeader == "" {
		return nil, errors.New("--storage.remote.tenant-header is empty: name the header that carries the tenant (X-Scope-OrgID for Cortex and Mimir)")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 5 * time.Second
	}
	if opts.Tenant == nil {
		opts.Tenant = func(org string) string { return org }
	}
	wu, err := parseURL("--storage.remote.write-url", opts.WriteURL)
	if err != nil {
		return nil, err
	}
	qu, err := parseURL("--storage.remote.query-url", opts.QueryURL)
	if err != nil {
		return nil, err
	}
	qu.Path = strings.TrimSuffix(qu.Path, "/")
	f := promauto.With(reg)
	return &Backend{
		logger:   logger,
		opts:     opts,
		writeURL: wu,
		queryURL: qu,
		http: &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}},
		orgs: map[string]*org{},
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tidemark_remote_requests_total",
			Help: "Requests to the remote engine, by kind (write, read, query, proxy-read, proxy-write) and status code (0: no answer).",
		}, []string{"kind", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tidemark_remote_request_duration_seconds",
			Help:    "Time of requests to the remote engine, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"kind"}),
	}, nil
}

func parseURL(flag, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q is not accepted: use an http:// or https:// URL", flag, s)
	}
	return u, nil
}

// Open implements storage.Backend: it checks that the engine answers, and
// only logs when it does not (the engine may start after Tidemark; writes
// answer 503 until it is there).
func (b *Backend) Open(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", b.queryURL.String()+"/api/v1/status/buildinfo", nil)
	if err != nil {
		return err
	}
	req.Header.Set(b.opts.TenantHeader, "tidemark-probe")
	resp, err := b.http.Do(req)
	if err != nil {
		b.logger.Warn("the metrics engine does not answer yet; writes answer 503 until it does", "query_url", b.queryURL.String(), "err", err)
		return nil
	}
	resp.Body.Close()
	b.logger.Info("metrics engine answers", "query_url", b.queryURL.String(), "write_url", b.writeURL.String(), "status", resp.StatusCode)
	return nil
}

// Org implements storage.Backend.
func (b *Backend) Org(slug string) (storage.Org, error) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	if o, ok := b.orgs[slug]; ok {
		return o, nil
	}
	if err := storage.ValidSlug(slug); err != nil {
		return nil, err
	}
	tenant := b.opts.Tenant(slug)
	headers := map[string]string{b.opts.TenantHeader: tenant}
	wc, err := promremote.NewWriteClient("tidemark-"+slug, &promremote.ClientConfig{
		URL:     &config_util.URL{URL: b.writeURL},
		Timeout: model.Duration(b.opts.Timeout),
		Headers: headers,
	})
	if err != nil {
		return nil, fmt.Errorf("remote write client of organization %q: %w", slug, err)
	}
	readURL := *b.queryURL
	readURL.Path += "/api/v1/read"
	rc, err := promremote.NewReadClient("tidemark-"+slug, &promremote.ClientConfig{
		URL:     &config_util.URL{URL: &readURL},
		Timeout: model.Duration(b.opts.Timeout),
		Headers: headers,
	})
	if err != nil {
		return nil, fmt.Errorf("remote read client of organization %q: %w", slug, err)
	}
	o := &org{
		b:         b,
		slug:      slug,
		tenant:    tenant,
		write:     wc,
		queryable: promremote.NewSampleAndChunkQueryableClient(rc, labels.EmptyLabels(), nil, true, func() (int64, error) { return 0, nil }),
	}
	b.orgs[slug] = o
	return o, nil
}

// Close implements storage.Backend. Nothing is buffered between requests.
func (b *Backend) Close() error {
	b.http.CloseIdleConnections()
	return nil
}

// tenantOf is the tenant of the organization in ctx.
func (b *Backend) tenantOf(ctx context.Context) (string, error) {
	slug, ok := storage.OrgFrom(ctx)
	if !ok {
		return "", storage.ErrNoOrg
	}
	return b.opts.Tenant(slug), nil
}

// observe counts a request to the engine.
func (b *Backend) observe(kind string, code int, start time.Time) {
	b.requests.WithLabelValues(kind, fmt.Sprint(code)).Inc()
	b.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}

type startKey struct{}

func withStart(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, startKey{}, t)
}
