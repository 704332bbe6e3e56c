package remote

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/tidemark/tidemark/storage"
)

// HeadStats implements storage.StatsReporter from the engine's query API,
// for /api/v1/status/tsdb: the number of series, the series per metric
// name, and per value of statsByLabelName, the most first. Cortex and Mimir
// have no status/tsdb of their own to pass through. What a TSDB's head
// knows only of itself (memory per label, time range) stays empty.
func (o *org) HeadStats(statsByLabelName string, limit int) (*tsdb.Stats, error) {
	ctx, cancel := context.WithTimeout(storage.WithOrg(context.Background(), o.slug), o.b.opts.Timeout)
	defer cancel()
	now := time.Now()
	total, err := o.instant(ctx, `count({__name__=~".+"})`, now)
	if err != nil {
		return nil, err
	}
	st := &tsdb.Stats{IndexPostingStats: &index.PostingsStats{}}
	if len(total) > 0 {
		st.NumSeries = uint64(total[0].F)
	}
	byName, err := o.instant(ctx, fmt.Sprintf(`topk(%d, count by (__name__) ({__name__=~".+"}))`, limit), now)
	if err != nil {
		return nil, err
	}
	st.IndexPostingStats.CardinalityMetricsStats = statsOf(byName, "__name__")
	if statsByLabelName != "" {
		byValue, err := o.instant(ctx, fmt.Sprintf(`topk(%d, count by (%s) ({%s!=""}))`, limit, statsByLabelName, statsByLabelName), now)
		if err != nil {
			return nil, err
		}
		pairs := statsOf(byValue, statsByLabelName)
		for i := range pairs {
			pairs[i].Name = statsByLabelName + "=" + pairs[i].Name
		}
		st.IndexPostingStats.LabelValuePairsStats = pairs
	}
	return st, nil
}

// instant runs an instant query of the organization in the engine.
func (o *org) instant(ctx context.Context, q string, ts time.Time) (promql.Vector, error) {
	qry, err := o.b.QueryEngine().NewInstantQuery(ctx, nil, nil, q, ts)
	if err != nil {
		return nil, err
	}
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	v, ok := res.Value.(promql.Vector)
	if !ok {
		return nil, fmt.Errorf("query %s: %s is not a vector", q, res.Value.Type())
	}
	return v, nil
}

// statsOf turns counts by one label into Stats, the most first.
func statsOf(v promql.Vector, label string) []index.Stat {
	out := make([]index.Stat, 0, len(v))
	for _, s := range v {
		out = append(out, index.Stat{Name: s.Metric.Get(label), Count: uint64(s.F)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	return out
}
