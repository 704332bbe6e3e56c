package impact

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/impact/scenario"
)

// BenchmarkScoreEvent scores one event on the three default signals over
// 30m before and 10m after: at their own spacing (one [1m] range), and at
// 15s steps.
func BenchmarkScoreEvent(b *testing.B) {
	h := newHarness(b)
	end := time.Now().Truncate(time.Second)
	sc := scenario.Mixed(1, end)
	h.writeSeries("acme", sc.Series())
	c := Change{Seq: 1, ID: "x", Name: "deploy", Time: sc.Changes[scenario.MixedCheckoutV2].At.UnixMilli(), Labels: labels.FromStrings("service", "checkout", "env", "prod")}
	for _, step := range []time.Duration{0, 15 * time.Second} {
		name := "spacing=range"
		set := DefaultSettings()
		if step != 0 {
			name = "spacing=15s"
			for i := range set.Signals {
				set.Signals[i].spacing = step
			}
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				imp, err := h.svc.opts.Scorer.Score(context.Background(), "acme", &set, c, end)
				require.NoError(b, err)
				require.Equal(b, "degraded", imp.Verdict)
			}
		})
	}
}

// BenchmarkBurst writes change events one at a time, as clients do, with
// and without 1,000 events being scored at once, and reports the writes'
// 99th percentile latency in both cases and how long the burst took.
func BenchmarkBurst(b *testing.B) {
	for b.Loop() {
		h := newHarness(b)
		end := time.Now().Truncate(time.Second)
		sc := scenario.Mixed(1, end)
		h.writeSeries("acme", sc.Series())
		var burst []map[string]any
		for i := range 1000 {
			svc := []string{"checkout", "cart", "search", "ledger"}[i%4]
			burst = append(burst, map[string]any{"id": fmt.Sprintf("burst-%d", i), "event_name": "deploy",
				"timestamp":  end.Add(-50*time.Minute + time.Duration(i)*time.Second).UnixMilli(),
				"attributes": map[string]string{"service": svc, "env": "prod", "n": fmt.Sprint(i)}})
		}
		h.writeEvents("acme", burst)
		h.setNow(end)

		// Writes every 5ms: n of them, or, with done, until it is closed.
		writes := func(tag string, n int, done <-chan struct{}) []time.Duration {
			var lat []time.Duration
			for i := 0; ; i++ {
				if done == nil && i == n {
					return lat
				}
				if done != nil {
					select {
					case <-done:
						return lat
					default:
					}
				}
				t0 := time.Now()
				h.writeEvents("acme", []map[string]any{{"id": fmt.Sprintf("%s-%d", tag, i), "event_name": "ping", "attributes": map[string]string{"team": "x"}}})
				lat = append(lat, time.Since(t0))
				time.Sleep(5 * time.Millisecond)
			}
		}
		pct := func(lat []time.Duration, p int) float64 {
			slices.Sort(lat)
			return float64(lat[len(lat)*p/100].Microseconds()) / 1000
		}
		quiet := writes("quiet", 500, nil)
		done := make(chan struct{})
		var took time.Duration
		go func() {
			t0 := time.Now()
			for h.svc.Pass() {
			}
			took = time.Since(t0)
			close(done)
		}()
		busy := writes("busy", 0, done)
		require.Equal(b, 1000.0, h.counter("tidemark_impact_events_scored_total"))
		b.ReportMetric(pct(quiet, 50), "write-p50-quiet-ms")
		b.ReportMetric(pct(busy, 50), "write-p50-burst-ms")
		b.ReportMetric(pct(quiet, 99), "write-p99-quiet-ms")
		b.ReportMetric(pct(busy, 99), "write-p99-burst-ms")
		b.ReportMetric(took.Seconds(), "burst-s")
		b.ReportMetric(float64(len(busy)), "writes-during-burst")
	}
}
