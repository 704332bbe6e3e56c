package query

import (
	"context"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// Sharding evaluates an associative aggregation over a series-local
// expression (one whose every output series comes from one input series,
// such as rate(x[5m])) once per series shard, and combines the partial
// results with the same aggregation, as Mimir's query-frontend does:
//
//	sum by (service) (rate(x[5m]))
//	  shard i:  sum by (service) (rate(x[5m]))   over the series with hash % n == i
//	  combined: sum by (service) (<the partial sums of every shard>)
//
// sum, min, max and group combine with themselves, count with sum. The
// combining query is the original query text with each sharded
// aggregation's inner expression replaced by a placeholder selector of the
// same length, so that every position in it, and in the annotations the
// wrapped engine reports, is that of the original; a shard's query is the
// aggregation's own text at its own offset. A series is hashed without its
// metric name, so series that would collide once their name is dropped
// are in the same shard. A part whose shards report any annotation or
// error is evaluated again unsharded: the combination would not tell a
// float-and-histogram mix apart from an ordinary result, and the
// unsharded query's annotations and errors are the reference.
type shardPlan struct {
	n        int
	original string
	outer    string
	aggs     []shardedAgg
}

type shardedAgg struct {
	op          parser.ItemType
	placeholder string
	query       string
}

// localFuncs are the functions whose output series each come from one
// series of their one vector or matrix argument.
var localFuncs = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(`abs acos acosh asin asinh atan atanh avg_over_time ceil changes
		clamp clamp_max clamp_min cos cosh count_over_time days_in_month day_of_month day_of_week
		day_of_year deg delta deriv exp first_over_time floor histogram_avg histogram_count
		histogram_sum histogram_stddev histogram_stdvar double_exponential_smoothing hour idelta
		increase integral irate last_over_time ln log10 log2 mad_over_time max_over_time
		min_over_time ts_of_first_over_time ts_of_max_over_time ts_of_min_over_time
		ts_of_last_over_time minute month predict_linear present_over_time quantile_over_time rad
		rate resets round sgn sin sinh sqrt stddev_over_time stdvar_over_time sum_over_time tan
		tanh timestamp year`) {
		m[f] = true
	}
	return m
}()

// planShards returns how to evaluate expr (parsed from qs) in n shards, or
// nil when no aggregation in it can be sharded.
func planShards(expr parser.Expr, qs string, n int) *shardPlan {
	if expr == nil || n <= 1 {
		return nil
	}
	var aggs []*parser.AggregateExpr
	var walk func(e parser.Node)
	walk = func(e parser.Node) {
		switch e := e.(type) {
		case *parser.SubqueryExpr:
			// Evaluated on the subquery's own steps, not the query's.
			return
		case *parser.AggregateExpr:
			if shardable(e) {
				aggs = append(aggs, e)
				return
			}
		}
		for _, c := range parser.Children(e) {
			walk(c)
		}
	}
	walk(expr)
	outer := []byte(qs)
	plan := &shardPlan{n: n, original: qs}
	for _, a := range aggs {
		pr, inner := a.PosRange, a.Expr.PositionRange()
		if pr.Start < 0 || int(pr.End) > len(qs) || inner.Start < pr.Start || inner.End > pr.End {
			continue
		}
		placeholder := "__tidemark_shard_" + strconv.Itoa(len(plan.aggs)) + "__"
		if int(inner.End-inner.Start) < len(placeholder) {
			continue
		}
		text := qs[pr.Start:pr.End]
		if a.Op == parser.COUNT && !strings.EqualFold(text[:min(5, len(text))], "count") {
			continue
		}
		copy(outer[inner.Start:inner.End], placeholder+strings.Repeat(" ", int(inner.End-inner.Start)-len(placeholder)))
		if a.Op == parser.COUNT {
			copy(outer[pr.Start:], "sum  ")
		}
		plan.aggs = append(plan.aggs, shardedAgg{
			op:          a.Op,
			placeholder: placeholder,
			query:       strings.Repeat(" ", int(pr.Start)) + text,
		})
	}
	if len(plan.aggs) == 0 {
		return nil
	}
	plan.outer = string(outer)
	return plan
}

func shardable(a *parser.AggregateExpr) bool {
	switch a.Op {
	case parser.SUM, parser.MIN, parser.MAX, parser.COUNT, parser.GROUP:
	default:
		return false
	}
	if !a.Without && slices.Contains(a.Grouping, labels.MetricName) {
		// A shard's answer has lost the name a grouping by it keeps
		// until the end of the query.
		return false
	}
	return a.Param == nil && seriesLocal(a.Expr)
}

// seriesLocal reports whether every series e yields comes from one series
// that a selector in it selects.
func seriesLocal(e parser.Expr) bool {
	switch e := e.(type) {
	case *parser.ParenExpr:
		return seriesLocal(e.Expr)
	case *parser.UnaryExpr:
		return seriesLocal(e.Expr)
	case *parser.VectorSelector, *parser.MatrixSelector:
		return true
	case *parser.SubqueryExpr:
		return seriesLocal(e.Expr)
	case *parser.Call:
		if !localFuncs[e.Func.Name] {
			return false
		}
		vectors := 0
		for _, arg := range e.Args {
			switch arg.Type() {
			case parser.ValueTypeVector, parser.ValueTypeMatrix:
				if !seriesLocal(arg) {
					return false
				}
				vectors++
			default:
				if selects(arg) {
					return false
				}
			}
		}
		return vectors == 1
	case *parser.BinaryExpr:
		switch {
		case e.LHS.Type() == parser.ValueTypeVector && !selects(e.RHS) && e.RHS.Type() == parser.ValueTypeScalar:
			return seriesLocal(e.LHS)
		case e.RHS.Type() == parser.ValueTypeVector && !selects(e.LHS) && e.LHS.Type() == parser.ValueTypeScalar:
			return seriesLocal(e.RHS)
		}
	}
	return false
}

// selects reports whether e reads series.
func selects(e parser.Node) bool {
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n.(type) {
		case *parser.VectorSelector, *parser.MatrixSelector:
			found = true
		}
		return nil
	})
	return found
}

// evalFunc evaluates qs over q for the steps of s.
type evalFunc func(ctx context.Context, kind string, q storage.Queryable, qs string, s span) (promql.Matrix, annotations.Annotations, int64, error)

// evalRange evaluates every part in shards into mats, annos, totals and
// errs (one per part).
func (p *shardPlan) evalRange(ctx context.Context, parallelism int, q storage.Queryable, g grid, parts []span, eval evalFunc,
	mats []promql.Matrix, annos []annotations.Annotations, totals []int64, errs []error) {
	type partial struct {
		m     promql.Matrix
		annos annotations.Annotations
		total int64
		err   error
	}
	res := make([][][]partial, len(parts)) // part, aggregation, shard
	var tasks []func()
	for i, s := range parts {
		res[i] = make([][]partial, len(p.aggs))
		for j, a := range p.aggs {
			res[i][j] = make([]partial, p.n)
			for k := range p.n {
				tasks = append(tasks, func() {
					r := &res[i][j][k]
					r.m, r.annos, r.total, r.err = eval(ctx, "shard", shardQueryable{q, uint64(k), uint64(p.n)}, a.query, s)
				})
			}
		}
	}
	parallel(parallelism, tasks)
	tasks = tasks[:0]
	for i, s := range parts {
		placeholders := map[string][]storage.Series{}
		clean := true
		for j, a := range p.aggs {
			var partials []promql.Series
			for _, r := range res[i][j] {
				totals[i] += r.total
				if r.err != nil || len(r.annos) > 0 {
					clean = false
				}
				partials = append(partials, r.m...)
			}
			if a.op == parser.SUM && sumCancels(partials) {
				clean = false
			}
			for _, r := range res[i][j] {
				for _, ser := range r.m {
					placeholders[a.placeholder] = append(placeholders[a.placeholder], promql.NewStorageSeries(withStaleMarkers(ser, s.to, g.step)))
				}
			}
		}
		tasks = append(tasks, func() {
			var t int64
			if clean {
				mats[i], annos[i], t, errs[i] = eval(ctx, "combine", placeholderQueryable{q, placeholders}, p.outer, s)
			} else {
				mats[i], annos[i], t, errs[i] = eval(ctx, "unsharded", q, p.original, s)
			}
			totals[i] += t
		})
	}
	parallel(parallelism, tasks)
}

// sumCancels reports whether the partial sums of a group at a step cancel
// out so far that adding them could differ from the engine's compensated
// sum of all the series by more than rounding: the sum of their magnitudes
// exceeds the magnitude of their sum 2^20-fold (a relative difference of
// at most about 2e-10), or their sum is 0 and they are not.
func sumCancels(partials []promql.Series) bool {
	type key struct {
		h uint64
		t int64
	}
	type acc struct{ sum, abs, hsum, habs, hcount, hcountAbs float64 }
	accs := map[key]*acc{}
	get := func(h uint64, t int64) *acc {
		a := accs[key{h, t}]
		if a == nil {
			a = &acc{}
			accs[key{h, t}] = a
		}
		return a
	}
	for _, s := range partials {
		h := s.Metric.Hash()
		for _, p := range s.Floats {
			a := get(h, p.T)
			a.sum += p.F
			a.abs += math.Abs(p.F)
		}
		for _, p := range s.Histograms {
			a := get(h, p.T)
			a.hsum += p.H.Sum
			a.habs += math.Abs(p.H.Sum)
			a.hcount += p.H.Count
			a.hcountAbs += math.Abs(p.H.Count)
		}
	}
	cancels := func(sum, abs float64) bool {
		return abs > 0 && !(abs <= (1<<20)*math.Abs(sum))
	}
	for _, a := range accs {
		if cancels(a.sum, a.abs) || cancels(a.hsum, a.habs) || cancels(a.hcount, a.hcountAbs) {
			return true
		}
	}
	return false
}

// withStaleMarkers returns s with a stale marker at each step after a point
// that has no point of its own (up to last), so that the combining query
// does not look back past a step at which a shard had no value.
func withStaleMarkers(s promql.Series, last, step int64) promql.Series {
	present := make(map[int64]bool, len(s.Floats)+len(s.Histograms))
	for _, p := range s.Floats {
		present[p.T] = true
	}
	for _, p := range s.Histograms {
		present[p.T] = true
	}
	floats := s.Floats
	added := false
	mark := func(t int64) {
		if t+step <= last && !present[t+step] {
			if !added {
				floats = append(make([]promql.FPoint, 0, len(s.Floats)+4), s.Floats...)
				added = true
			}
			floats = append(floats, promql.FPoint{T: t + step, F: math.Float64frombits(value.StaleNaN)})
		}
	}
	for _, p := range s.Floats {
		mark(p.T)
	}
	for _, p := range s.Histograms {
		mark(p.T)
	}
	if added {
		sort.Slice(floats, func(i, j int) bool { return floats[i].T < floats[j].T })
	}
	return promql.Series{Metric: s.Metric, Floats: floats, Histograms: s.Histograms}
}

// shardQueryable selects only the series of one shard.
type shardQueryable struct {
	storage.Queryable
	index, count uint64
}

func (s shardQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := s.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return shardQuerier{q, s.index, s.count}, nil
}

type shardQuerier struct {
	storage.Querier
	index, count uint64
}

func (q shardQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &shardSeriesSet{SeriesSet: q.Querier.Select(ctx, sortSeries, hints, ms...), index: q.index, count: q.count}
}

type shardSeriesSet struct {
	storage.SeriesSet
	index, count uint64
	buf          []byte
}

func (s *shardSeriesSet) Next() bool {
	for s.SeriesSet.Next() {
		var h uint64
		h, s.buf = s.SeriesSet.At().Labels().HashWithoutLabels(s.buf)
		if h%s.count == s.index {
			return true
		}
	}
	return false
}

// placeholderQueryable answers the placeholders of a combining query with
// the shards' partial results, and every other selector from storage.
type placeholderQueryable struct {
	storage.Queryable
	series map[string][]storage.Series
}

func (p placeholderQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := p.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return placeholderQuerier{q, p.series}, nil
}

type placeholderQuerier struct {
	storage.Querier
	series map[string][]storage.Series
}

func (q placeholderQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	for _, m := range ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual && strings.HasPrefix(m.Value, "__tidemark_shard_") {
			ss := q.series[m.Value]
			if sortSeries {
				ss = append([]storage.Series(nil), ss...)
				sort.SliceStable(ss, func(i, j int) bool { return labels.Compare(ss[i].Labels(), ss[j].Labels()) < 0 })
			}
			return &listSeriesSet{series: ss, i: -1}
		}
	}
	return q.Querier.Select(ctx, sortSeries, hints, ms...)
}

type listSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *listSeriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *listSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *listSeriesSet) Err() error                        { return nil }
func (s *listSeriesSet) Warnings() annotations.Annotations { return nil }

// vectorSeries is a shard's instant answer as series.
func vectorSeries(v promql.Vector) []promql.Series {
	out := make([]promql.Series, 0, len(v))
	for _, s := range v {
		ser := promql.Series{Metric: s.Metric}
		if s.H != nil {
			ser.Histograms = []promql.HPoint{{T: s.T, H: s.H}}
		} else {
			ser.Floats = []promql.FPoint{{T: s.T, F: s.F}}
		}
		out = append(out, ser)
	}
	return out
}
