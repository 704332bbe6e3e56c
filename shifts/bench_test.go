package shifts_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkEvaluate is one run of a detector of one signal over 100
// services with a 1h lookback at a 30s step: the two range queries on an
// embedded TSDB, reading the signal's shifts from the event log and
// writing none (they were written by the first run). ns/op is the time of
// a run.
func BenchmarkEvaluate(b *testing.B) {
	s := newStack(b)
	at := time.Now().Add(-time.Hour).Truncate(time.Minute)
	for i := range 100 {
		r := rate(dailyCycle)
		if i%10 == 0 {
			// Every tenth service has had a surge.
			r = times(r, 3, at.Add(-40*time.Minute), at.Add(-25*time.Minute))
		}
		s.history(fmt.Sprintf("service-%03d", i), r, at, at)
	}
	s.setNow(at)
	d := s.detector(prometheus.NewRegistry())
	ctx := context.Background()
	if !d.Evaluate(ctx, "acme", settings) {
		b.Fatal("the first run failed")
	}
	if got := len(s.shiftEvents()); got != 20 {
		b.Fatalf("the first run wrote %d events; want 20 (10 shifts)", got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if !d.Evaluate(ctx, "acme", settings) {
			b.Fatal("a run failed")
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/run")
}
