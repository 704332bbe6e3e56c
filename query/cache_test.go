package query

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/storage"
)

// cacheStack is an organization's embedded storage behind WatchAppends,
// and two engines over it: the plain one and one with the results cache.
type cacheStack struct {
	ctx    context.Context
	org    storage.Org
	plain  *promql.Engine
	cached *Engine
	cache  *ResultsCache
	q      promstorage.Queryable
}

func newCacheStack(t testing.TB) *cacheStack {
	emb := storage.NewEmbedded(slog.New(slog.DiscardHandler), nil, storage.EmbeddedOptions{
		Dir: t.TempDir(), Retention: 30 * 24 * time.Hour, OutOfOrderWindow: 7 * 24 * time.Hour,
	})
	w := WatchAppends(emb)
	t.Cleanup(func() { w.Close() })
	org, err := w.Org("acme")
	require.NoError(t, err)
	cache := NewResultsCache(nil, CacheOptions{MaxBytes: 1 << 20})
	w.Subscribe(cache.Invalidate)
	plain := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e8, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	return &cacheStack{
		ctx: storage.WithOrg(context.Background(), "acme"), org: org, plain: plain, cache: cache,
		cached: NewEngine(nil, plain, Options{Split: true, Shards: 2, MinPartSteps: 4, Cache: cache}),
		q:      storage.Routed{Backend: w},
	}
}

// add appends value v for the series at every step from..to.
func (s *cacheStack) add(t testing.TB, ls labels.Labels, from, to time.Time, step time.Duration, v func(time.Time) float64) {
	app := s.org.AppenderV2(s.ctx)
	for ts := from; !ts.After(to); ts = ts.Add(step) {
		_, err := app.Append(0, ls, 0, ts.UnixMilli(), v(ts), nil, nil, promstorage.AOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
}

func (s *cacheStack) run(t testing.TB, e promql.QueryEngine, qs string, start, end time.Time, step time.Duration) promql.Matrix {
	q, err := e.NewRangeQuery(s.ctx, s.q, nil, qs, start, end, step)
	require.NoError(t, err)
	defer q.Close()
	res := q.Exec(s.ctx)
	require.NoError(t, res.Err)
	m, err := res.Matrix()
	require.NoError(t, err)
	// The answer outlives the query.
	out := make(promql.Matrix, len(m))
	for i, ser := range m {
		out[i] = promql.Series{Metric: ser.Metric, Floats: append([]promql.FPoint(nil), ser.Floats...)}
	}
	return out
}

func (s *cacheStack) requests(result string) float64 {
	return testutil.ToFloat64(s.cache.requests.WithLabelValues(result))
}

// requireSame checks that the cached engine answers as the plain one.
func requireSame(t *testing.T, want, got promql.Matrix) {
	t.Helper()
	require.Equal(t, len(want), len(got), "series")
	for i := range want {
		require.True(t, labels.Equal(want[i].Metric, got[i].Metric), "%s vs %s", want[i].Metric, got[i].Metric)
		require.Equal(t, len(want[i].Floats), len(got[i].Floats), "points of %s", want[i].Metric)
		for j, p := range want[i].Floats {
			q := got[i].Floats[j]
			require.Equal(t, p.T, q.T)
			require.InEpsilon(t, p.F, q.F, 1e-9, "%s at %d", want[i].Metric, p.T)
		}
	}
}

func TestCacheInvalidation(t *testing.T) {
	s := newCacheStack(t)
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-2 * time.Hour)
	counter := func(ts time.Time) float64 { return float64(ts.Sub(start) / time.Second) }
	for i := range 4 {
		s.add(t, labels.FromStrings("__name__", "http_requests_total", "pod", fmt.Sprint(i)), start, end, 15*time.Second, counter)
	}
	s.add(t, labels.FromStrings("__name__", "other", "pod", "0"), start, end, 15*time.Second, counter)
	const qs = `sum by (pod) (rate(http_requests_total[5m]))`
	step := time.Minute

	first := s.run(t, s.cached, qs, start, end, step)
	requireSame(t, s.run(t, s.plain, qs, start, end, step), first)
	require.Equal(t, 1.0, s.requests("miss"))

	// The same range: from the cache alone.
	requireSame(t, first, s.run(t, s.cached, qs, start, end, step))
	require.Equal(t, 1.0, s.requests("hit"))

	// A later range: the cached steps and the new ones.
	later := s.run(t, s.cached, qs, start.Add(10*time.Minute), end.Add(10*time.Minute), step)
	requireSame(t, s.run(t, s.plain, qs, start.Add(10*time.Minute), end.Add(10*time.Minute), step), later)
	require.Equal(t, 1.0, s.requests("partial"))

	// A backfill of another metric leaves the entry whole.
	s.add(t, labels.FromStrings("__name__", "other", "pod", "1"), start, start, time.Minute, counter)
	s.run(t, s.cached, qs, start.Add(10*time.Minute), end.Add(10*time.Minute), step)
	require.Equal(t, 2.0, s.requests("hit"))

	// A backfilled series inside the cached range: the steps from its
	// first sample on are evaluated again.
	s.add(t, labels.FromStrings("__name__", "http_requests_total", "pod", "9"), start.Add(time.Hour), end, 15*time.Second, counter)
	got := s.run(t, s.cached, qs, start.Add(10*time.Minute), end.Add(10*time.Minute), step)
	want := s.run(t, s.plain, qs, start.Add(10*time.Minute), end.Add(10*time.Minute), step)
	requireSame(t, want, got)
	require.Len(t, got, 5)
	require.Equal(t, 2.0, s.requests("partial"))

	// An out-of-order sample into an existing series (a counter reset an
	// hour ago) changes the rate of that pod after it.
	s.add(t, labels.FromStrings("__name__", "http_requests_total", "pod", "0"), start.Add(time.Hour+7*time.Second), start.Add(time.Hour+7*time.Second), time.Second, func(time.Time) float64 { return 0 })
	requireSame(t, s.run(t, s.plain, qs, start, end, step), s.run(t, s.cached, qs, start, end, step))
}

// onePerStep is an answer of one series with a point at every step of g.
func onePerStep(g grid) promql.Matrix {
	res := promql.Matrix{{Metric: labels.FromStrings("a", "1")}}
	for ts := g.start; ts <= g.end; ts += g.step {
		res[0].Floats = append(res[0].Floats, promql.FPoint{T: ts, F: 1})
	}
	return res
}

func TestCacheInFlightAppend(t *testing.T) {
	c := NewResultsCache(nil, CacheOptions{MaxBytes: 1 << 20})
	g := grid{start: 0, end: 100_000, step: 10_000}
	res := onePerStep(g)
	// An append lands while the query runs: what the query stores ends
	// before it.
	tr := c.track("acme", []string{"m"})
	c.Invalidate("acme", Appended{"m": 55_000})
	c.put(tr, "k", g, span{0, g.end}, res)
	c.untrack(tr)
	m, got, todo, _ := c.get("acme", "k", g, span{0, g.end})
	require.Equal(t, span{0, 50_000}, got)
	require.Equal(t, []span{{60_000, 100_000}}, todo)
	require.Len(t, m[0].Floats, 6)

	// An append to a metric the query does not read changes nothing; one
	// before the extent drops it.
	c.Invalidate("acme", Appended{"n": 0})
	_, got, _, _ = c.get("acme", "k", g, span{0, g.end})
	require.Equal(t, span{0, 50_000}, got)
	c.Invalidate("acme", Appended{"m": math.MinInt64 + 1})
	_, _, todo, _ = c.get("acme", "k", g, span{0, g.end})
	require.Equal(t, []span{{0, g.end}}, todo)
	require.Zero(t, c.bytes)
}

// TestKeptResponse: an encoded answer kept beside its extent is given back
// while the extent holds every step it covers, and counted in the cache's
// size; an append inside its steps, a newer extent for the query, an
// answer the extent no longer holds whole, or one too large, is not.
func TestKeptResponse(t *testing.T) {
	c := NewResultsCache(nil, CacheOptions{MaxBytes: 1 << 20})
	g := grid{start: 0, end: 100_000, step: 10_000}
	res := onePerStep(g)
	store := func(want span) *Answer {
		tr := c.track("acme", []string{"m"})
		defer c.untrack(tr)
		e := c.put(tr, "k", g, want, res)
		require.NotNil(t, e)
		return &Answer{org: "acme", key: "k", want: want, e: e}
	}
	a := store(span{0, g.end})
	before := c.bytes
	c.KeepResponse(a, "rk", []byte("answer"))
	body, _, ok := c.Response("acme", "rk", "")
	require.True(t, ok)
	require.Equal(t, "answer", string(body))
	require.Equal(t, before+(&response{body: []byte("answer")}).bytes("rk"), c.bytes)
	_, _, ok = c.Response("other", "rk", "")
	require.False(t, ok, "organizations do not share answers")
	// Compressed as a client asked: kept for that answer only.
	c.KeepEncoded("acme", "rk", "gzip", []byte("answer"), []byte("zz"))
	_, enc, _ := c.Response("acme", "rk", "gzip")
	require.Nil(t, enc, "not the kept answer's body")
	c.KeepEncoded("acme", "rk", "gzip", body, []byte("zz"))
	_, enc, _ = c.Response("acme", "rk", "gzip")
	require.Equal(t, "zz", string(enc))
	_, enc, _ = c.Response("acme", "rk", "deflate")
	require.Nil(t, enc)
	require.Equal(t, extentBytes(c.orgs["acme"].entries["k"]), c.bytes)

	// After the last step, or to another metric: kept.
	c.Invalidate("acme", Appended{"m": g.end + 1, "n": 0})
	_, _, ok = c.Response("acme", "rk", "")
	require.True(t, ok)
	// Inside its steps: gone, and no longer counted.
	c.Invalidate("acme", Appended{"m": 95_000})
	_, _, ok = c.Response("acme", "rk", "")
	require.False(t, ok)
	require.Equal(t, extentBytes(c.orgs["acme"].entries["k"]), c.bytes)
	// An answer its extent no longer holds whole is not kept.
	c.KeepResponse(a, "rk", []byte("answer"))
	_, _, ok = c.Response("acme", "rk", "")
	require.False(t, ok)

	// A newer extent for the query drops the answers of the old one.
	a = store(span{0, g.end})
	c.KeepResponse(a, "rk", []byte("answer"))
	store(span{10_000, g.end})
	_, _, ok = c.Response("acme", "rk", "")
	require.False(t, ok)
	require.Equal(t, extentBytes(c.orgs["acme"].entries["k"]), c.bytes)

	// Too large for the cache: not kept.
	a = store(span{0, g.end})
	c.KeepResponse(a, "big", make([]byte, 1<<19))
	_, _, ok = c.Response("acme", "big", "")
	require.False(t, ok)
}

func TestCacheBounded(t *testing.T) {
	c := NewResultsCache(nil, CacheOptions{MaxBytes: 64 << 10})
	g := grid{start: 0, end: 1_000_000, step: 1000}
	for k := range 50 {
		tr := c.track("acme", nil)
		res := promql.Matrix{{Metric: labels.FromStrings("k", fmt.Sprint(k))}}
		for ts := g.start; ts <= g.end; ts += g.step {
			res[0].Floats = append(res[0].Floats, promql.FPoint{T: ts, F: float64(k)})
		}
		c.put(tr, fmt.Sprint(k), g, span{g.start, g.end}, res)
		c.untrack(tr)
		require.LessOrEqual(t, c.bytes, int64(64<<10))
	}
	require.Greater(t, testutil.ToFloat64(c.evictions), 40.0)
	// The most recent is kept.
	m, _, todo, _ := c.get("acme", "49", g, span{g.start, g.end})
	require.Empty(t, todo)
	require.Equal(t, 49.0, m[0].Floats[0].F)
}

func TestGridSplit(t *testing.T) {
	g := newGrid(time.UnixMilli(1000), time.UnixMilli(100_500), 10*time.Second)
	require.Equal(t, grid{start: 1000, end: 91_000, step: 10_000}, g)
	for _, c := range []struct {
		parts, minSteps int
		align           int64
	}{{2, 1, 10_000}, {3, 2, 30_000}, {4, 1, 25_000}, {16, 1, 1000}, {1, 1, 10_000}, {2, 1, 1 << 40}} {
		spans := g.split(span{g.start, g.end}, c.parts, c.minSteps, c.align)
		require.Equal(t, g.start, spans[0].from)
		require.Equal(t, g.end, spans[len(spans)-1].to)
		for i, s := range spans {
			require.LessOrEqual(t, s.from, s.to)
			require.Zero(t, (s.from-g.start)%g.step)
			if i > 0 {
				require.Equal(t, spans[i-1].to+g.step, s.from)
			}
		}
		require.LessOrEqual(t, len(spans), max(c.parts, 1))
		if c.align > g.end {
			require.Len(t, spans, 1, "no multiple of align inside: not cut")
		} else if c.parts > 1 {
			require.Greater(t, len(spans), 1)
		}
	}
}
