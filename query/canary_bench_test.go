package query

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"
)

// BenchmarkCanaryQuery runs the stage-aware canary query of the end-to-end
// tests over 24h (step 5m) on each execution path, with no cache: 16
// request series and the stage's change_event_active series, 24h at 2m.
func BenchmarkCanaryQuery(b *testing.B) {
	qs, err := os.ReadFile("../cmd/tidemark/testdata/stage-aware.promql")
	require.NoError(b, err)
	s := newCacheStack(b)
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-24 * time.Hour)
	for i := range 8 {
		for _, ok := range []string{"true", "false"} {
			ls := labels.FromStrings("__name__", "sample_app_requests_count", "instance", fmt.Sprintf("10.250.0.%d:8080", i), "success", ok)
			s.add(b, ls, start.Add(-time.Hour), end, 2*time.Minute, func(ts time.Time) float64 { return float64(ts.Unix()) })
		}
	}
	s.add(b, labels.FromStrings("__name__", "change_event_active", "event_name", "sample-app-40"), end.Add(-30*time.Minute), end, 15*time.Second, func(time.Time) float64 { return 1 })
	for _, p := range []struct {
		name string
		eng  func() promql.QueryEngine
	}{
		{"plain", func() promql.QueryEngine { return s.plain }},
		{"split", func() promql.QueryEngine { return NewEngine(nil, s.plain, Options{Split: true}) }},
		{"split+sharded", func() promql.QueryEngine { return NewEngine(nil, s.plain, Options{Split: true, Shards: 4}) }},
	} {
		b.Run(p.name, func(b *testing.B) {
			eng := p.eng()
			b.ReportAllocs()
			for b.Loop() {
				s.run(b, eng, string(qs), start, end, 5*time.Minute)
			}
		})
	}
}
