package query

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// BenchmarkRangeQuery runs dashboard queries over 2000 series (6h at 15s)
// on each execution path.
func BenchmarkRangeQuery(b *testing.B) {
	s := newCacheStack(b)
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-6 * time.Hour)
	for i := range 2000 {
		ls := labels.FromStrings("__name__", "http_requests_total", "service", fmt.Sprint("svc-", i%20), "pod", fmt.Sprint(i))
		s.add(b, ls, start, end, 15*time.Second, func(ts time.Time) float64 { return float64(ts.Unix() % 100000 * int64(i%7+1)) })
	}
	paths := []struct {
		name string
		eng  func() promql.QueryEngine
	}{
		{"plain", func() promql.QueryEngine { return s.plain }},
		{"split", func() promql.QueryEngine { return NewEngine(nil, s.plain, Options{Split: true}) }},
		{"sharded", func() promql.QueryEngine { return NewEngine(nil, s.plain, Options{Shards: 2}) }},
		{"split+sharded", func() promql.QueryEngine { return NewEngine(nil, s.plain, Options{Split: true, Shards: 2}) }},
		{"cached", func() promql.QueryEngine {
			return NewEngine(nil, s.plain, Options{Split: true, Cache: NewResultsCache(nil, CacheOptions{MaxBytes: 64 << 20})})
		}},
	}
	for _, qs := range []string{
		`sum by (service) (rate(http_requests_total[5m]))`,
		`max by (service) (rate(http_requests_total[5m])) / sum by (service) (rate(http_requests_total[5m]))`,
	} {
		for _, p := range paths {
			b.Run(p.name+"/"+qs, func(b *testing.B) {
				eng := p.eng()
				b.ReportAllocs()
				for b.Loop() {
					s.run(b, eng, qs, start, end, time.Minute)
				}
			})
		}
	}
}
