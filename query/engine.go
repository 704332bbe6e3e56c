// Package query runs PromQL for the HTTP API on Prometheus's own engine,
// faster than one evaluation would and with the same answers.
//
// An Engine wraps a promql.QueryEngine (Prometheus's *promql.Engine) and
// implements the same interface, so Prometheus's v1 API takes it as is:
//
//   - A range query is split by time into sub-ranges on the query's own
//     step grid, evaluated concurrently and concatenated. Every step of a
//     range query is evaluated on its own, so this changes nothing but the
//     wall time; expressions whose value depends on the query's start or end
//     (@ start(), @ end(), start(), end(), range()) are not split.
//   - Associative aggregations (sum, min, max, count, group) over series-local
//     expressions are sharded by series hash (see shard.go).
//   - A ResultsCache keeps finished range results per organization and
//     query and computes only what it lacks; appends invalidate what they
//     could change (see cache.go and appends.go).
package query

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// Options configures an Engine. The zero value evaluates every query as the
// wrapped engine does.
type Options struct {
	// Parallelism is how many sub-queries of one query run at once;
	// 0 means GOMAXPROCS.
	Parallelism int
	// Split turns time splitting of range queries on.
	Split bool
	// MinPartSteps is the fewest steps a sub-range of a split query has;
	// 0 means 16. A sub-query costs an index lookup of every series it
	// reads, so short ranges are not worth splitting.
	MinPartSteps int
	// SplitAlign rounds the boundaries of sub-ranges longer than it to its
	// multiples (counted from the Unix epoch); 0 means 2h, the TSDB's block
	// boundaries, so that a sub-query reads few blocks.
	SplitAlign time.Duration
	// Shards is how many series shards an associative aggregation is
	// evaluated in; 0 or 1 turns sharding off.
	Shards int
	// Cache keeps range query results; nil: no cache.
	Cache *ResultsCache
	// Parser parses expressions for analysis; it must accept what the
	// wrapped engine accepts. Nil: parser.NewParser with default options.
	Parser parser.Parser
}

// Engine is a promql.QueryEngine that splits, shards and caches, and
// delegates every evaluation to the engine it wraps. It is safe for
// concurrent use.
type Engine struct {
	inner promql.QueryEngine
	opts  Options

	// subqueries counts the evaluations handed to inner, by kind: part (a
	// time range of a query), shard, combine, unsharded (a sharded part
	// evaluated again whole).
	subqueries *prometheus.CounterVec
}

var _ promql.QueryEngine = (*Engine)(nil)

// NewEngine returns an Engine over inner.
func NewEngine(reg prometheus.Registerer, inner promql.QueryEngine, opts Options) *Engine {
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.GOMAXPROCS(0)
	}
	if opts.MinPartSteps <= 0 {
		opts.MinPartSteps = 16
	}
	if opts.SplitAlign <= 0 {
		opts.SplitAlign = 2 * time.Hour
	}
	if opts.Parser == nil {
		opts.Parser = parser.NewParser(parser.Options{})
	}
	return &Engine{inner: inner, opts: opts, subqueries: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "tidemark_query_subqueries_total",
		Help: "Evaluations of split or sharded queries handed to the PromQL engine, by kind: part (a time range of a range query), shard, combine (of shards' results), unsharded (a sharded part evaluated again whole).",
	}, []string{"kind"})}
}

// NewInstantQuery implements promql.QueryEngine.
func (e *Engine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	plain, err := e.inner.NewInstantQuery(ctx, q, opts, qs, ts)
	if err != nil || e.opts.Shards <= 1 {
		return plain, err
	}
	expr, _ := analyse(e.opts.Parser, qs)
	plan := planShards(expr, qs, e.opts.Shards)
	if plan == nil {
		return plain, nil
	}
	return &instantQuery{e: e, plain: plain, q: q, opts: opts, qs: qs, ts: ts, plan: plan}, nil
}

// NewRangeQuery implements promql.QueryEngine.
func (e *Engine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	// The wrapped engine validates the query and reports its errors; its
	// query also answers Statement() and String().
	plain, err := e.inner.NewRangeQuery(ctx, q, opts, qs, start, end, step)
	if err != nil {
		return nil, err
	}
	expr, a := analyse(e.opts.Parser, qs)
	var plan *shardPlan
	if e.opts.Shards > 1 {
		plan = planShards(expr, qs, e.opts.Shards)
	}
	if !a.splittable {
		a.cacheable = false
	}
	if plan == nil && !(a.splittable && e.opts.Split) && !(a.cacheable && e.opts.Cache != nil) {
		return plain, nil
	}
	return &rangeQuery{
		e: e, plain: plain, q: q, opts: opts, qs: qs, a: a, plan: plan,
		grid: newGrid(start, end, step),
	}, nil
}

// firstErr returns the first non-nil error.
func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// errClosed is returned by Exec after Close.
var errClosed = errors.New("query closed")
