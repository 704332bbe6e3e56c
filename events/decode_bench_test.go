package events

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkDecodeBatch measures decoding and validating a request of 1000
// events of the shape the bench and CI jobs send.
func BenchmarkDecodeBatch(b *testing.B) {
	now := time.Now()
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 1000 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"event_name":"deploy-%d","event_state":"start","timestamp":%d,"attributes":{"service":"svc-%d","env":"prod","canary_weight":20},"metadata":{"commit":"9f2c1e7"},"links":[{"href":"https://ci.example/run/%d","text":"pipeline"}]}`,
			i, now.Add(-time.Duration(i)*time.Second).UnixMilli(), i%100, i)
	}
	sb.WriteString("]")
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		evs, err := Decode(body, now, DefaultLimits)
		if err != nil || len(evs) != 1000 {
			b.Fatal(len(evs), err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
