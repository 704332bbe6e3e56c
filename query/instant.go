package query

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/stats"
)

// instantQuery is an instant query evaluated in shards; plain, the
// unsharded query, answers when a shard reports an annotation or an error.
type instantQuery struct {
	e     *Engine
	plain promql.Query
	q     storage.Queryable
	opts  promql.QueryOpts
	qs    string
	ts    time.Time
	plan  *shardPlan

	mtx    sync.Mutex
	cancel context.CancelFunc
	closed bool
	// used are the queries whose results the answer holds.
	used      []promql.Query
	statsFrom promql.Query
}

func (r *instantQuery) Statement() parser.Statement { return r.plain.Statement() }
func (r *instantQuery) String() string              { return r.qs }

func (r *instantQuery) Stats() *stats.Statistics {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if r.statsFrom != nil {
		return r.statsFrom.Stats()
	}
	return r.plain.Stats()
}

func (r *instantQuery) Cancel() {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if r.cancel != nil {
		r.cancel()
	}
	r.plain.Cancel()
}

func (r *instantQuery) Close() {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	r.closed = true
	for _, q := range r.used {
		q.Close()
	}
	r.used = nil
	r.plain.Close()
}

func (r *instantQuery) Exec(ctx context.Context) *promql.Result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mtx.Lock()
	if r.closed {
		r.mtx.Unlock()
		return &promql.Result{Err: errClosed}
	}
	r.cancel = cancel
	r.mtx.Unlock()

	p := r.plan
	type partial struct {
		qry promql.Query
		res *promql.Result
		err error
	}
	parts := make([][]partial, len(p.aggs))
	var tasks []func()
	for j, a := range p.aggs {
		parts[j] = make([]partial, p.n)
		for k := range p.n {
			tasks = append(tasks, func() {
				pt := &parts[j][k]
				r.e.subqueries.WithLabelValues("shard").Inc()
				pt.qry, pt.err = r.e.inner.NewInstantQuery(ctx, shardQueryable{r.q, uint64(k), uint64(p.n)}, r.opts, a.query, r.ts)
				if pt.err == nil {
					pt.res = pt.qry.Exec(ctx)
				}
			})
		}
	}
	parallel(r.e.opts.Parallelism, tasks)
	placeholders := map[string][]storage.Series{}
	clean := true
	var used []promql.Query
	for j, a := range p.aggs {
		var partials []promql.Series
		for _, pt := range parts[j] {
			if pt.qry != nil {
				used = append(used, pt.qry)
			}
			if pt.err != nil || pt.res.Err != nil || len(pt.res.Warnings) > 0 {
				clean = false
				continue
			}
			v, err := pt.res.Vector()
			if err != nil {
				clean = false
				continue
			}
			for _, ser := range vectorSeries(v) {
				partials = append(partials, ser)
				placeholders[a.placeholder] = append(placeholders[a.placeholder], promql.NewStorageSeries(ser))
			}
		}
		if a.op == parser.SUM && sumCancels(partials) {
			clean = false
		}
	}
	var res *promql.Result
	var from promql.Query
	if clean {
		r.e.subqueries.WithLabelValues("combine").Inc()
		outer, err := r.e.inner.NewInstantQuery(ctx, placeholderQueryable{r.q, placeholders}, r.opts, p.outer, r.ts)
		if err == nil {
			used = append(used, outer)
			res, from = outer.Exec(ctx), outer
		} else {
			clean = false
		}
	}
	if !clean {
		r.e.subqueries.WithLabelValues("unsharded").Inc()
		res, from = r.plain.Exec(ctx), r.plain
	}
	r.mtx.Lock()
	r.used = append(r.used, used...)
	r.statsFrom = from
	r.mtx.Unlock()
	return res
}
