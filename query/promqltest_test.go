package query

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

// Prometheus's own PromQL test files (promql/promqltest/testdata/*.test of
// the module Tidemark builds on) run on every execution path: the
// wrapped engine alone, split by time, sharded, both, and with the results
// cache. Splitting and sharding are forced on ranges and series sets as
// small as the tests use.

func testEngine(t testing.TB) *promql.Engine {
	return promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
}

func testOptions(o Options) Options {
	o.Parallelism = 3
	o.MinPartSteps = 1
	o.SplitAlign = time.Minute
	o.Parser = parser.NewParser(promqltest.TestParserOpts)
	return o
}

func TestPromQLPlain(t *testing.T) {
	promqltest.RunBuiltinTests(t, testEngine(t))
}

func TestPromQLSplit(t *testing.T) {
	eng := NewEngine(nil, testEngine(t), testOptions(Options{Split: true}))
	promqltest.RunBuiltinTests(t, eng)
	parts := testutil.ToFloat64(eng.subqueries.WithLabelValues("part"))
	t.Logf("%v sub-ranges evaluated", parts)
	require.Greater(t, parts, 2000.0)
}

func TestPromQLSharded(t *testing.T) {
	eng := NewEngine(nil, testEngine(t), testOptions(Options{Shards: 3}))
	promqltest.RunBuiltinTests(t, eng)
	// Most aggregations are combined from shards; the rest were
	// evaluated again whole.
	combined := testutil.ToFloat64(eng.subqueries.WithLabelValues("combine"))
	unsharded := testutil.ToFloat64(eng.subqueries.WithLabelValues("unsharded"))
	t.Logf("combined %v, evaluated again unsharded %v", combined, unsharded)
	require.Greater(t, combined, 2*unsharded)
}

func TestPromQLSplitSharded(t *testing.T) {
	promqltest.RunBuiltinTests(t, NewEngine(nil, testEngine(t), testOptions(Options{Split: true, Shards: 2})))
}

func TestPromQLCached(t *testing.T) {
	cache := NewResultsCache(nil, CacheOptions{MaxBytes: 64 << 20})
	eng := NewEngine(nil, testEngine(t), testOptions(Options{Split: true, Shards: 2, Cache: cache}))
	promqltest.RunBuiltinTestsWithStorage(t, warmingEngine{eng}, func(t testing.TB) storage.Storage {
		// A new storage for every test file and clear command: nothing
		// cached before holds for it.
		cache.Reset()
		return notifyingStorage{promqltest.NewBuiltinTestStorage(t), func(a Appended) { cache.Invalidate("", a) }}
	})
	hits := testutil.ToFloat64(cache.requests.WithLabelValues("hit"))
	partial := testutil.ToFloat64(cache.requests.WithLabelValues("partial"))
	miss := testutil.ToFloat64(cache.requests.WithLabelValues("miss"))
	t.Logf("cache: %v hits, %v partial, %v misses", hits, partial, miss)
	require.Greater(t, partial, miss/4)
}

// warmingEngine evaluates the second half of every range query before
// handing out the query, so that the query is answered from the cache for
// those steps and evaluated for the rest.
type warmingEngine struct{ *Engine }

func (w warmingEngine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	if n := end.Sub(start) / step; n >= 1 {
		if warm, err := w.Engine.NewRangeQuery(ctx, q, opts, qs, start.Add((n+1)/2*step), end, step); err == nil {
			warm.Exec(ctx)
			warm.Close()
		}
	}
	return w.Engine.NewRangeQuery(ctx, q, opts, qs, start, end, step)
}

// notifyingStorage tells of its appends, as WatchAppends does for an
// organization's storage.
type notifyingStorage struct {
	storage.Storage
	notify func(Appended)
}

func (s notifyingStorage) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return NotifyingAppender(s.Storage.AppenderV2(ctx), s.notify)
}
