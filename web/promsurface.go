package web

import (
	"context"
	"errors"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/tidemark/tidemark/storage"
	"github.com/tidemark/tidemark/storage/metadata"
)

// promSurface is what Prometheus's API reads besides samples, for the
// organization in a request's context: exemplars, the metadata writers sent,
// the TSDB's cardinality, the server's flags and runtime.
type promSurface struct {
	exemplars promstorage.ExemplarQueryable
	// appendable records the metadata of remote write 2.0 and OTLP.
	appendable promstorage.AppendableV2
	metadata   *metadata.Store
	flags      map[string]string
	stats      *orgStats
	runtime    func() (v1.RuntimeInfo, error)
}

// Remote read limits: Prometheus's defaults (--storage.remote.read-*).
const (
	remoteReadSampleLimit     = 5e7
	remoteReadConcurrency     = 10
	remoteReadMaxBytesInFrame = 1 << 20
)

func newPromSurface(opts Options, routed storage.Routed, gatherer prometheus.Gatherer) promSurface {
	md := opts.Metadata
	if md == nil {
		md = metadata.New(0)
	}
	flags := opts.Flags
	if flags == nil {
		flags = map[string]string{}
	}
	start := time.Now().UTC()
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "<error retrieving current working directory>"
	}
	retention := ""
	if opts.Retention > 0 {
		retention = model.Duration(opts.Retention).String()
	}
	return promSurface{
		exemplars:  routed,
		appendable: metadata.Appendable{Next: routed, Store: md},
		metadata:   md,
		flags:      flags,
		stats:      &orgStats{backend: opts.Backend, gatherer: gatherer},
		runtime: func() (v1.RuntimeInfo, error) {
			host, _ := os.Hostname()
			return v1.RuntimeInfo{
				StartTime:           start,
				CWD:                 cwd,
				Hostname:            host,
				ServerTime:          time.Now().UTC(),
				ReloadConfigSuccess: true,
				LastConfigTime:      start,
				GoroutineCount:      runtime.NumGoroutine(),
				GOMAXPROCS:          runtime.GOMAXPROCS(0),
				GOMEMLIMIT:          debug.SetMemoryLimit(-1),
				GOGC:                os.Getenv("GOGC"),
				GODEBUG:             os.Getenv("GODEBUG"),
				StorageRetention:    retention,
			}, nil
		},
	}
}

// targets returns, for /api/v1/metadata, one target whose metadata is that
// of the organization in ctx: Prometheus's handler lists its targets'.
func (s promSurface) targets(ctx context.Context) v1.TargetRetriever {
	org, ok := storage.OrgFrom(ctx)
	if !ok {
		return noTargets{}
	}
	t := scrape.NewTarget(labels.EmptyLabels(), &config.ScrapeConfig{JobName: "remote-write"}, nil, nil)
	t.SetMetadataStore(s.metadata.Org(org))
	return metadataTargets{t: t}
}

type metadataTargets struct {
	noTargets
	t *scrape.Target
}

func (m metadataTargets) TargetsActive() map[string][]*scrape.Target {
	return map[string][]*scrape.Target{"remote-write": {m.t}}
}

// orgStats gives Prometheus's /api/v1/status/tsdb handler the statistics of
// the organization in the request's context. The handler asks for them
// without a context, so requests of that route take turns (serve), each
// setting the organization first; no other route waits for them.
type orgStats struct {
	backend  storage.Backend
	gatherer prometheus.Gatherer

	mtx sync.Mutex
	org string
}

// serve serializes the requests for /api/v1/status/tsdb.
func (s *orgStats) serve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/status/tsdb" {
			next.ServeHTTP(w, r)
			return
		}
		org, _ := storage.OrgFrom(r.Context())
		s.mtx.Lock()
		defer s.mtx.Unlock()
		s.org = org
		defer func() { s.org = "" }()
		next.ServeHTTP(w, r)
	})
}

var errNotServed = errors.New("not served by Tidemark")

// Stats implements v1.TSDBAdminStats: the head block's statistics.
func (s *orgStats) Stats(statsByLabelName string, limit int) (*tsdb.Stats, error) {
	if s.org == "" {
		return nil, storage.ErrNoOrg
	}
	o, err := s.backend.Org(s.org)
	if err != nil {
		return nil, err
	}
	return storage.OrgHeadStats(o, statsByLabelName, limit)
}

// Gather implements prometheus.Gatherer for the handler's chunk count: the
// organization's prometheus_tsdb_head_chunks.
func (s *orgStats) Gather() ([]*dto.MetricFamily, error) {
	if s.gatherer == nil || s.org == "" {
		return nil, nil
	}
	mfs, err := s.gatherer.Gather()
	if err != nil {
		return nil, err
	}
	for _, mf := range mfs {
		if mf.GetName() != "prometheus_tsdb_head_chunks" {
			continue
		}
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == "org" && lp.GetValue() == s.org {
					return []*dto.MetricFamily{{Name: mf.Name, Help: mf.Help, Type: mf.Type, Metric: []*dto.Metric{m}}}, nil
				}
			}
		}
	}
	return nil, nil
}

func (s *orgStats) CleanTombstones() error { return errNotServed }
func (s *orgStats) Delete(context.Context, int64, int64, ...*labels.Matcher) error {
	return errNotServed
}
func (s *orgStats) Snapshot(string, bool) error { return errNotServed }
func (s *orgStats) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return tsdb.WALReplayStatus{}, nil
}
func (s *orgStats) BlockMetas() ([]tsdb.BlockMeta, error) { return nil, errNotServed }
