package web_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/internal/testutil"
	"github.com/tidemark/tidemark/state"
)

// newBenchHandler is the in-process stack's handler, called directly so the
// figures are Tidemark's own cost, not loopback networking.
func newBenchHandler(b *testing.B) (http.Handler, *testStack) {
	st := newTestStack(b)
	u, _ := url.Parse(st.url)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Scheme, r.URL.Host = u.Scheme, u.Host
		st.handler.ServeHTTP(w, r)
	}), st
}

func serve(b *testing.B, h http.Handler, method, path, token string, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	return rec
}

// BenchmarkRemoteWrite measures remote-write 1.0 ingest through the HTTP
// handler: authentication, routing, Prometheus's write handler and the
// organization's TSDB. Each request carries 1000 series with one sample, as
// Prometheus's queue manager sends by default (max_samples_per_send: 2000).
func BenchmarkRemoteWrite(b *testing.B) {
	const series = 1000
	h, st := newBenchHandler(b)
	tok := st.tokens["acme"][state.ScopeWrite]
	lsets := make([]labels.Labels, series)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "http_requests_total", "service", fmt.Sprintf("svc-%d", i%50),
			"method", []string{"GET", "POST"}[i%2], "code", []string{"200", "404", "500"}[i%3], "instance", fmt.Sprintf("10.0.%d.%d:8080", i/250, i%250))
	}
	hdr := map[string]string{"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf", "X-Prometheus-Remote-Write-Version": "0.1.0"}
	t0 := time.Now().UnixMilli()
	body := func(i int) []byte {
		ss := make([]testutil.Series, series)
		for j := range ss {
			ss[j] = testutil.Series{Labels: lsets[j], Samples: []testutil.Sample{{T: t0 + int64(i), V: float64(i)}}}
		}
		return testutil.EncodeV1(b, ss)
	}
	serve(b, h, "POST", "/api/v1/write", tok, body(0), hdr) // Create the series.
	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		b.StopTimer()
		payload := body(i)
		b.StartTimer()
		serve(b, h, "POST", "/api/v1/write", tok, payload, hdr)
	}
	b.ReportMetric(float64(b.N*series)/b.Elapsed().Seconds(), "samples/s")
	// allocs/op (from ReportAllocs) counts the handler only: the request
	// bodies are built with the timer stopped. Per sample: allocs/op / 1000.
}

// BenchmarkEventsBatched measures change events through the HTTP API, 1000
// events per request, each acknowledged durably (event log fsynced, samples
// in the TSDB's WAL).
func BenchmarkEventsBatched(b *testing.B) {
	const batch = 1000
	h, st := newBenchHandler(b)
	tok := st.tokens["acme"][state.ScopeWrite]
	base := time.Now().Add(-time.Hour)
	var seq atomic.Int64
	body := func() []byte {
		var sb strings.Builder
		sb.WriteString("[")
		for j := range batch {
			n := seq.Add(1)
			if j > 0 {
				sb.WriteString(",")
			}
			state := "start"
			if n%2 == 0 {
				state = "stop"
			}
			fmt.Fprintf(&sb, `{"event_name":"deploy-%d","event_state":"%s","timestamp":%d,"attributes":{"service":"svc-%d","env":"prod"},"metadata":{"commit":"9f2c1e7"}}`,
				(n+1)/2, state, base.Add(time.Duration(n)*time.Millisecond).UnixMilli(), (n+1)/2%100)
		}
		sb.WriteString("]")
		return []byte(sb.String())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		payload := body()
		b.StartTimer()
		serve(b, h, "POST", "/api/v4/organizations/acme/change_events", tok, payload, nil)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEventsSingle measures one event per request from concurrent
// clients (group commit shares an fsync among waiting requests).
func BenchmarkEventsSingle(b *testing.B) {
	h, st := newBenchHandler(b)
	tok := st.tokens["acme"][state.ScopeWrite]
	var seq atomic.Int64
	b.SetParallelism(16) // 16 x GOMAXPROCS concurrent clients.
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			serve(b, h, "POST", "/api/v4/organizations/acme/change_events", tok,
				[]byte(fmt.Sprintf(`{"event_name":"step-%d","attributes":{"service":"svc-%d"}}`, n, n%100)), nil)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEventVisibility measures the time from an event's 200 to the
// event answering a PromQL query, and reports its p50 and p99.
func BenchmarkEventVisibility(b *testing.B) {
	h, st := newBenchHandler(b)
	wtok, rtok := st.tokens["acme"][state.ScopeWrite], st.tokens["acme"][state.ScopeRead]
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("visible-%d", i)
		serve(b, h, "PUT", "/api/v4/organizations/acme/change_events", wtok, []byte(`{"event_name":"`+name+`"}`), nil)
		acked := time.Now()
		q := "/api/v1/query?query=" + url.QueryEscape(`change_events{event_name="`+name+`"}`)
		for {
			rec := serve(b, h, "GET", q, rtok, nil, nil)
			if strings.Contains(rec.Body.String(), name) {
				break
			}
			if time.Since(acked) > 10*time.Second {
				b.Fatalf("event %s not visible 10s after its 200", name)
			}
		}
		lat = append(lat, time.Since(acked))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkRepeatedDashboard measures a dashboard's 24h range queries
// answered from the results cache, as a refresh of an unchanged Grafana
// dashboard is: everything but evaluation (authentication, the API, the
// cache, the JSON answer). 1000 series of 24h at 2m.
func BenchmarkRepeatedDashboard(b *testing.B) {
	const series, step = 1000, 2 * time.Minute
	h, st := newBenchHandler(b)
	wtok, rtok := st.tokens["acme"][state.ScopeWrite], st.tokens["acme"][state.ScopeRead]
	hdr := map[string]string{"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf", "X-Prometheus-Remote-Write-Version": "0.1.0"}
	end := time.Now().Truncate(5 * time.Minute)
	start := end.Add(-24 * time.Hour).Add(5 * time.Minute)
	for from := start; !from.After(end); from = from.Add(60 * step) {
		ss := make([]testutil.Series, series)
		for i := range ss {
			ss[i].Labels = labels.FromStrings("__name__", "http_requests_total", "service", fmt.Sprintf("svc-%d", i%50),
				"method", []string{"GET", "POST"}[i%2], "code", []string{"200", "404", "500"}[i%3], "instance", fmt.Sprintf("10.0.%d.%d:8080", i/250, i%250))
			for t := from; t.Before(from.Add(60*step)) && !t.After(end); t = t.Add(step) {
				ss[i].Samples = append(ss[i].Samples, testutil.Sample{T: t.UnixMilli(), V: float64(t.Sub(start) / time.Second * time.Duration(i%7+1))})
			}
		}
		serve(b, h, "POST", "/api/v1/write", wtok, testutil.EncodeV1(b, ss), hdr)
	}
	for _, q := range []struct{ name, expr string }{
		{"one-service", `sum(rate(http_requests_total{service="svc-3"}[10m]))`},
		{"sum-by", `sum by (service, code) (rate(http_requests_total[10m]))`},
		{"error-ratio", `sum by (service) (rate(http_requests_total{code=~"5.."}[10m])) / sum by (service) (rate(http_requests_total[10m]))`},
	} {
		path := "/api/v1/query_range?" + url.Values{"query": {q.expr}, "start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(end.Unix())}, "step": {"300"}}.Encode()
		serve(b, h, "GET", path, rtok, nil, nil) // Fills the cache.
		for _, enc := range []string{"identity", "gzip"} {
			hdr := map[string]string{"Accept-Encoding": enc}
			b.Run(q.name+"/"+enc, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					serve(b, h, "GET", path, rtok, nil, hdr)
				}
			})
		}
	}
}
