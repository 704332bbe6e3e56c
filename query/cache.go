package query

import (
	"container/list"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/promql"
)

// CacheOptions configures a ResultsCache.
type CacheOptions struct {
	// MaxBytes bounds the memory the cached results take (an estimate of
	// their labels and points); the least recently used go first.
	MaxBytes int64
}

// ResultsCache keeps finished range query results, as Mimir's and
// Thanos' query-frontends do, and is what an Engine reads before it
// evaluates anything.
//
// An entry is keyed by organization, query string, step, the phase of the
// steps (start modulo step) and the query options that change results
// (lookback delta, start timestamps). It holds one extent: the points of
// a contiguous range of steps, the last range asked for. A query asks the
// entry for the steps it has and evaluates only the steps before and
// after them. Steps are never realigned, so an answer is exactly what the
// wrapped engine would give for the query as asked.
//
// Only expressions whose step values depend on samples at or before the
// step are cached (see analysis.cacheable), so a sample appended at time T
// can change only steps at or after T. Invalidate, which an appender calls
// when it commits (see WatchAppends), cuts every extent of the
// organization that reads that metric back to the steps before T. A query
// in flight while such a commit lands keeps what it read in its answer,
// but what it stores is cut the same way. Results that carry annotations
// are not kept.
//
// It is safe for concurrent use.
type ResultsCache struct {
	maxBytes int64

	mtx   sync.Mutex
	orgs  map[string]*orgCache
	lru   list.List // of *extent, most recently used first
	bytes int64

	requests      *prometheus.CounterVec
	invalidations prometheus.Counter
	evictions     prometheus.Counter
	size          prometheus.GaugeFunc
}

type orgCache struct {
	entries map[string]*extent
	// responses are the extents that keep an encoded answer, by request.
	responses map[string]*extent
	trackers  map[*tracker]struct{}
	// maxTo is at least the last step of every entry.
	maxTo int64
}

// extent is an entry: the points of the steps from..to of one query.
type extent struct {
	org, key string
	names    []string // metric names read; nil: any
	step     int64
	from, to int64
	series   promql.Matrix
	// responses are encoded answers of requests the extent answered
	// whole, by request (see KeepResponse).
	responses map[string]*response
	bytes     int64
	elem      *list.Element
}

// tracker collects, for a query in flight, the lowest timestamp appended
// since it started to the metrics it reads.
type tracker struct {
	org   string
	names []string
	low   int64
}

// NewResultsCache returns an empty cache.
func NewResultsCache(reg prometheus.Registerer, opts CacheOptions) *ResultsCache {
	c := &ResultsCache{maxBytes: opts.MaxBytes, orgs: map[string]*orgCache{}}
	f := promauto.With(reg)
	c.requests = f.NewCounterVec(prometheus.CounterOpts{
		Name: "tidemark_query_results_cache_requests_total",
		Help: "Range queries that looked up the results cache, by outcome: response (the encoded answer of the same request, kept), hit (answered from the cache alone), partial (some steps evaluated), miss.",
	}, []string{"result"})
	c.invalidations = f.NewCounter(prometheus.CounterOpts{
		Name: "tidemark_query_results_cache_invalidations_total",
		Help: "Cached extents cut back or dropped because samples were appended inside them.",
	})
	c.evictions = f.NewCounter(prometheus.CounterOpts{
		Name: "tidemark_query_results_cache_evictions_total",
		Help: "Cached extents dropped to stay within the cache's size.",
	})
	c.size = f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tidemark_query_results_cache_bytes",
		Help: "Estimated memory held by the results cache.",
	}, func() float64 {
		c.mtx.Lock()
		defer c.mtx.Unlock()
		return float64(c.bytes)
	})
	return c
}

// cacheKey is the key of a query's entry within its organization.
func cacheKey(qs string, g grid, opts promql.QueryOpts) string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(g.step, 10))
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(g.start-floorDiv(g.start, g.step)*g.step, 10))
	b.WriteByte('|')
	if opts != nil {
		b.WriteString(opts.LookbackDelta().String())
		if u := opts.UseStartTimestamps(); u != nil {
			b.WriteString(strconv.FormatBool(*u))
		}
	}
	b.WriteByte('|')
	b.WriteString(qs)
	return b.String()
}

func (c *ResultsCache) org(slug string) *orgCache {
	oc := c.orgs[slug]
	if oc == nil {
		oc = &orgCache{entries: map[string]*extent{}, trackers: map[*tracker]struct{}{}, maxTo: math.MinInt64}
		c.orgs[slug] = oc
	}
	return oc
}

// track starts collecting the appends to names (nil: any) of org.
func (c *ResultsCache) track(org string, names []string) *tracker {
	tr := &tracker{org: org, names: names, low: math.MaxInt64}
	c.mtx.Lock()
	defer c.mtx.Unlock()
	c.org(org).trackers[tr] = struct{}{}
	return tr
}

func (c *ResultsCache) untrack(tr *tracker) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if oc := c.orgs[tr.org]; oc != nil {
		delete(oc.trackers, tr)
		c.dropIfEmpty(tr.org, oc)
	}
}

func (c *ResultsCache) dropIfEmpty(slug string, oc *orgCache) {
	if len(oc.entries) == 0 && len(oc.trackers) == 0 {
		delete(c.orgs, slug)
	}
}

// get returns a copy of the cached points of want's steps, the span they
// cover, the spans (at most two, in time order) left to evaluate, and,
// when none is left, the extent that answers want whole.
func (c *ResultsCache) get(org, key string, g grid, want span) (promql.Matrix, span, []span, *extent) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	oc := c.orgs[org]
	if oc == nil {
		return nil, span{}, []span{want}, nil
	}
	e := oc.entries[key]
	if e == nil {
		return nil, span{}, []span{want}, nil
	}
	ov := span{max(want.from, e.from), min(want.to, e.to)}
	if ov.from > ov.to {
		return nil, span{}, []span{want}, nil
	}
	c.lru.MoveToFront(e.elem)
	m := slice(e.series, ov, true)
	var todo []span
	if want.from < ov.from {
		todo = append(todo, span{want.from, ov.from - g.step})
	}
	if ov.to < want.to {
		todo = append(todo, span{ov.to + g.step, want.to})
	}
	if len(todo) > 0 {
		e = nil
	}
	return m, ov, todo, e
}

// put stores res, the answer for want's steps, as key's extent, less the
// steps that appends seen by tr may have changed. It returns the extent
// stored, if it holds every step of want.
func (c *ResultsCache) put(tr *tracker, key string, g grid, want span, res promql.Matrix) *extent {
	if c.maxBytes <= 0 {
		return nil
	}
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if tr.low <= want.from {
		return nil
	}
	whole := true
	if tr.low <= want.to {
		want.to = want.from + (tr.low-1-want.from)/g.step*g.step
		whole = false
	}
	e := &extent{org: tr.org, key: key, names: tr.names, step: g.step, from: want.from, to: want.to}
	e.series = slice(res, want, true)
	e.bytes = extentBytes(e)
	if e.bytes > c.maxBytes/2 {
		return nil
	}
	oc := c.org(tr.org)
	if old := oc.entries[key]; old != nil {
		c.remove(oc, old)
	}
	oc.entries[key] = e
	oc.maxTo = max(oc.maxTo, e.to)
	e.elem = c.lru.PushFront(e)
	c.bytes += e.bytes
	c.evict()
	if !whole || oc.entries[key] != e {
		return nil
	}
	return e
}

// evict drops the least recently used extents until the cache is within
// its size.
func (c *ResultsCache) evict() {
	for c.bytes > c.maxBytes {
		last := c.lru.Back().Value.(*extent)
		c.remove(c.orgs[last.org], last)
		c.evictions.Inc()
	}
}

func (c *ResultsCache) remove(oc *orgCache, e *extent) {
	c.dropResponses(oc, e, math.MinInt64)
	delete(oc.entries, e.key)
	c.lru.Remove(e.elem)
	c.bytes -= e.bytes
	c.dropIfEmpty(e.org, oc)
}

// observe counts a lookup.
func (c *ResultsCache) observe(found, evaluated bool) {
	switch {
	case found && !evaluated:
		c.requests.WithLabelValues("hit").Inc()
	case found:
		c.requests.WithLabelValues("partial").Inc()
	default:
		c.requests.WithLabelValues("miss").Inc()
	}
}

// Invalidate is told the lowest timestamp that one commit appended per
// metric name to org's storage, after the samples became queryable and
// before the commit returns. It cuts every extent that reads one of those
// metrics back to the steps before that timestamp.
func (c *ResultsCache) Invalidate(org string, low Appended) {
	if len(low) == 0 {
		return
	}
	all := int64(math.MaxInt64)
	for _, t := range low {
		all = min(all, t)
	}
	c.mtx.Lock()
	defer c.mtx.Unlock()
	oc := c.orgs[org]
	if oc == nil {
		return
	}
	for tr := range oc.trackers {
		tr.low = min(tr.low, low.lowest(tr.names, all))
	}
	if all > oc.maxTo {
		return
	}
	maxTo := int64(math.MinInt64)
	for _, e := range oc.entries {
		if t := low.lowest(e.names, all); t <= e.to {
			c.invalidations.Inc()
			if t <= e.from {
				c.remove(oc, e)
				continue
			}
			e.to = e.from + (t-1-e.from)/e.step*e.step
			e.series = slice(e.series, span{e.from, e.to}, false)
			c.dropResponses(oc, e, e.to)
			c.bytes -= e.bytes
			e.bytes = extentBytes(e)
			c.bytes += e.bytes
		}
		maxTo = max(maxTo, e.to)
	}
	oc.maxTo = maxTo
}

// Reset drops every entry.
func (c *ResultsCache) Reset() {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	for slug, oc := range c.orgs {
		for _, e := range oc.entries {
			c.remove(oc, e)
		}
		c.dropIfEmpty(slug, oc)
	}
}

// slice returns the points of m within s, copied when copyPoints, and
// drops the series left with none.
func slice(m promql.Matrix, s span, copyPoints bool) promql.Matrix {
	out := make(promql.Matrix, 0, len(m))
	for _, ser := range m {
		fs := ser.Floats[sort.Search(len(ser.Floats), func(i int) bool { return ser.Floats[i].T >= s.from }):]
		fs = fs[:sort.Search(len(fs), func(i int) bool { return fs[i].T > s.to })]
		hs := ser.Histograms[sort.Search(len(ser.Histograms), func(i int) bool { return ser.Histograms[i].T >= s.from }):]
		hs = hs[:sort.Search(len(hs), func(i int) bool { return hs[i].T > s.to })]
		if len(fs)+len(hs) == 0 {
			continue
		}
		if copyPoints {
			if len(fs) > 0 {
				fs = append([]promql.FPoint(nil), fs...)
			}
			if len(hs) > 0 {
				c := make([]promql.HPoint, len(hs))
				for i, h := range hs {
					c[i] = promql.HPoint{T: h.T, H: h.H.Copy()}
				}
				hs = c
			}
		} else {
			if len(fs) == 0 {
				fs = nil
			}
			if len(hs) == 0 {
				hs = nil
			}
		}
		out = append(out, promql.Series{Metric: ser.Metric, Floats: fs, Histograms: hs})
	}
	return out
}

// extentBytes estimates the memory an extent holds.
func extentBytes(e *extent) int64 {
	n := int64(len(e.key)) + 256
	for _, s := range e.series {
		n += int64(s.Metric.ByteSize()) + 64 + 16*int64(len(s.Floats))
		for _, h := range s.Histograms {
			n += 16 + int64(h.H.Size())
		}
	}
	for rk, r := range e.responses {
		n += r.bytes(rk)
	}
	return n
}
