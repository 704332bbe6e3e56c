package query

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/prometheus/prometheus/util/stats"

	tmstorage "github.com/tidemark/tidemark/storage"
)

// rangeQuery is a range query evaluated in parts: what the cache lacks,
// split by time, each part sharded when a plan says so.
type rangeQuery struct {
	e     *Engine
	plain promql.Query // validated by the wrapped engine; never executed
	q     storage.Queryable
	opts  promql.QueryOpts
	qs    string
	a     analysis
	plan  *shardPlan
	grid  grid

	mtx    sync.Mutex
	cancel context.CancelFunc
	closed bool
	stats  stats.Statistics
}

func (r *rangeQuery) Statement() parser.Statement { return r.plain.Statement() }
func (r *rangeQuery) String() string              { return r.qs }

// Stats returns the evaluation time and the samples of the parts that were
// evaluated (none for what the cache answered).
func (r *rangeQuery) Stats() *stats.Statistics {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	s := r.stats
	if s.Timers == nil {
		s.Timers = stats.NewQueryTimers()
		s.Samples = stats.NewQuerySamples(false)
	}
	return &s
}

func (r *rangeQuery) Cancel() {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if r.cancel != nil {
		r.cancel()
	}
}

func (r *rangeQuery) Close() {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	r.closed = true
	r.plain.Close()
}

func (r *rangeQuery) Exec(ctx context.Context) *promql.Result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mtx.Lock()
	if r.closed {
		r.mtx.Unlock()
		return &promql.Result{Err: errClosed}
	}
	r.cancel = cancel
	r.mtx.Unlock()

	timers := stats.NewQueryTimers()
	samples := stats.NewQuerySamples(false)
	evalTimer := timers.GetTimer(stats.EvalTotalTime).Start()

	want := span{r.grid.start, r.grid.end}
	todo := []span{want}
	var (
		cache  = r.e.opts.Cache
		useC   = cache != nil && r.a.cacheable
		org    string
		key    string
		tr     *tracker
		cached promql.Matrix
		cspan  span
		hit    *extent
	)
	if useC {
		org, _ = tmstorage.OrgFrom(ctx)
		key = cacheKey(r.qs, r.grid, r.opts)
		// Track appends before reading anything, so that none that
		// lands while this query runs can leave a stale extent behind.
		tr = cache.track(org, r.a.names)
		defer cache.untrack(tr)
		cached, cspan, todo, hit = cache.get(org, key, r.grid, want)
	}

	var parts []span
	for _, s := range todo {
		if r.a.splittable && r.e.opts.Split {
			parts = append(parts, r.grid.split(s, r.e.opts.Parallelism, r.e.opts.MinPartSteps, r.e.opts.SplitAlign.Milliseconds())...)
		} else {
			parts = append(parts, s)
		}
	}
	// A range query of one step is evaluated as an instant query (no
	// sort() warning, step() is 0): a part of one step of a longer query
	// is evaluated with a neighbouring step, then cut back.
	evalSpans := append([]span(nil), parts...)
	for i, s := range parts {
		if s.from == s.to && want.from != want.to {
			if s.to < want.to {
				evalSpans[i].to += r.grid.step
			} else {
				evalSpans[i].from -= r.grid.step
			}
		}
	}
	results, annos, total, release, err := r.evalParts(ctx, evalSpans)
	if err == nil {
		for i := range parts {
			if parts[i] != evalSpans[i] {
				results[i] = slice(results[i], parts[i], false)
			}
		}
	}
	var res promql.Matrix
	if err == nil {
		ms := results
		if cached != nil {
			ms = insertInOrder(cached, cspan, parts, results)
		}
		res = concat(ms)
	}
	release()
	if useC {
		cache.observe(cached != nil, len(todo) > 0)
	}
	evalTimer.Stop()
	samples.TotalSamples = total
	r.mtx.Lock()
	r.stats = stats.Statistics{Timers: timers, Samples: samples}
	r.mtx.Unlock()
	if err != nil {
		return &promql.Result{Err: err, Warnings: annos}
	}
	if useC && len(annos) == 0 {
		// Results with annotations are not kept: an annotation does not
		// say which steps it came from, so a part of the range could not
		// be answered with exactly its own.
		if len(todo) > 0 {
			hit = cache.put(tr, key, r.grid, want, res)
		}
		recordAnswer(ctx, org, key, want, hit)
	}
	return &promql.Result{Value: res, Warnings: annos}
}

// insertInOrder puts the cached matrix, which covers the steps of cs
// between the computed parts, at its place in time among them.
func insertInOrder(cached promql.Matrix, cs span, parts []span, results []promql.Matrix) []promql.Matrix {
	out := make([]promql.Matrix, 0, len(results)+1)
	done := false
	for i, p := range parts {
		if !done && p.from > cs.to {
			out = append(out, cached)
			done = true
		}
		out = append(out, results[i])
	}
	if !done {
		out = append(out, cached)
	}
	return out
}

// evalParts evaluates the parts concurrently and returns their matrices in
// the order of parts, their annotations merged, the samples they read, and
// a function that closes their queries: the matrices are valid until it is
// called. On failure the error is that of the earliest part that failed.
func (r *rangeQuery) evalParts(ctx context.Context, parts []span) ([]promql.Matrix, annotations.Annotations, int64, func(), error) {
	n := len(parts)
	mats := make([]promql.Matrix, n)
	annos := make([]annotations.Annotations, n)
	errs := make([]error, n)
	totals := make([]int64, n)
	var closers []func()
	var closeMtx sync.Mutex
	keep := func(q promql.Query) {
		closeMtx.Lock()
		closers = append(closers, q.Close)
		closeMtx.Unlock()
	}
	release := func() {
		for _, c := range closers {
			c()
		}
	}
	eval := func(ctx context.Context, kind string, q storage.Queryable, qs string, s span) (promql.Matrix, annotations.Annotations, int64, error) {
		r.e.subqueries.WithLabelValues(kind).Inc()
		qry, err := r.e.inner.NewRangeQuery(ctx, q, r.opts, qs, time.UnixMilli(s.from), time.UnixMilli(s.to), time.Duration(r.grid.step)*time.Millisecond)
		if err != nil {
			return nil, nil, 0, err
		}
		keep(qry)
		res := qry.Exec(ctx)
		var total int64
		if st := qry.Stats(); st != nil && st.Samples != nil {
			total = st.Samples.TotalSamples
		}
		if res.Err != nil {
			return nil, res.Warnings, total, res.Err
		}
		m, err := res.Matrix()
		if err != nil {
			return nil, res.Warnings, total, fmt.Errorf("range query part: %w", err)
		}
		return m, res.Warnings, total, nil
	}
	if r.plan == nil {
		tasks := make([]func(), n)
		for i, s := range parts {
			tasks[i] = func() {
				mats[i], annos[i], totals[i], errs[i] = eval(ctx, "part", r.q, r.qs, s)
			}
		}
		parallel(r.e.opts.Parallelism, tasks)
	} else {
		r.plan.evalRange(ctx, r.e.opts.Parallelism, r.q, r.grid, parts, eval, mats, annos, totals, errs)
	}
	var all annotations.Annotations
	var total int64
	for i := range parts {
		all.Merge(annos[i])
		total += totals[i]
	}
	if err := firstErr(errs); err != nil {
		return nil, all, total, release, err
	}
	return mats, all, total, release, nil
}
