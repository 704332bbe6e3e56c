package main

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testservices"
	"github.com/tidemark/tidemark/internal/testutil"
)

// BenchmarkScaleOut measures three replicas on one PostgreSQL and one
// Cortex, against Cortex alone, on this machine:
//
//	go test ./cmd/tidemark -run XXX -bench ScaleOut -benchtime 1x
//
// It reports batched events/s through the replicas, remote-write samples/s
// through the replicas and directly into Cortex, query p50 through a
// replica and directly, and the lease takeover time after SIGKILLs of the
// holder.
func BenchmarkScaleOut(b *testing.B) {
	// Cortex's default per-tenant ingestion rate (25,000 samples/s) would
	// be the figure otherwise.
	engine := testservices.Cortex(b, testservices.CortexFlags("-distributor.ingestion-rate-limit=100000000", "-distributor.ingestion-burst-size=100000000"))
	so := startScaleOut(b, 3, engine, engine.PushURL, engine.QueryURL, "")

	b.Run("events", func(b *testing.B) {
		const clients, batch, d = 6, 1000, 10 * time.Second
		var n atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		for c := range clients {
			wg.Go(func() {
				for i := 0; time.Now().Before(deadline); i++ {
					var sb strings.Builder
					sb.WriteByte('[')
					for j := range batch {
						if j > 0 {
							sb.WriteByte(',')
						}
						fmt.Fprintf(&sb, `{"event_name":"bench","id":"b-%d-%d-%d","attributes":{"service":"s%d"}}`, c, i, j, j%50)
					}
					sb.WriteByte(']')
					if code, body := putEventsCode(so.replicas[c%len(so.replicas)], "acme", sb.String()); code != 200 {
						b.Errorf("events: %d %s", code, body)
						return
					}
					n.Add(batch)
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(n.Load())/d.Seconds(), "events/s")
	})

	ingest := func(b *testing.B, clients []remote.WriteClient) float64 {
		const series, d = 1000, 10 * time.Second
		var n atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		for c, cl := range clients {
			wg.Go(func() {
				ss := make([]testutil.Series, series)
				for i := range ss {
					ss[i].Labels = labels.FromStrings("__name__", "bench_ingest", "client", fmt.Sprint(c), "i", fmt.Sprint(i))
				}
				for time.Now().Before(deadline) {
					ts := time.Now().UnixMilli()
					for i := range ss {
						ss[i].Samples = []testutil.Sample{{T: ts, V: float64(ts)}}
					}
					if _, err := cl.Store(context.Background(), testutil.EncodeV1(b, ss), 0); err != nil {
						b.Errorf("remote write: %v", err)
						return
					}
					n.Add(series)
				}
			})
		}
		wg.Wait()
		return float64(n.Load()) / d.Seconds()
	}
	b.Run("ingest", func(b *testing.B) {
		var through, direct []remote.WriteClient
		for i := range 6 {
			through = append(through, testutil.WriteClient(b, so.base(i%3, "acme")+"/api/v1/write", acmeWrite, false, false))
			direct = append(direct, tenantWriteClient(b, engine.PushURL, "acme"))
		}
		d := ingest(b, direct)
		tm := ingest(b, through)
		b.ReportMetric(tm, "samples/s-through-tidemark")
		b.ReportMetric(d, "samples/s-direct")
		b.ReportMetric(tm/d, "ratio")
	})

	b.Run("query", func(b *testing.B) {
		queries := []string{
			`sum by (client) (rate(bench_ingest[1m]))`,
			`count(bench_ingest)`,
			`sum(change_events{event_name="bench"})`,
		}
		through := promClient(b, so.base(1, "acme"), acmeRead)
		cl, err := api.NewClient(api.Config{Address: engine.QueryURL, RoundTripper: testservices.TenantRoundTripper("acme", nil)})
		require.NoError(b, err)
		direct := promv1.NewAPI(cl)
		p50 := func(p promv1.API) time.Duration {
			var ds []time.Duration
			for range 20 {
				for _, q := range queries {
					start := time.Now()
					if _, _, _, err := p.QueryRange(context.Background(), q, promv1.Range{Start: time.Now().Add(-time.Minute), End: time.Now(), Step: 5 * time.Second}); err != nil {
						b.Fatalf("%s: %v", q, err)
					}
					ds = append(ds, time.Since(start))
				}
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			return ds[len(ds)/2]
		}
		p50(direct) // warm
		d, tm := p50(direct), p50(through)
		b.ReportMetric(float64(tm.Microseconds())/1000, "ms-p50-through-tidemark")
		b.ReportMetric(float64(d.Microseconds())/1000, "ms-p50-direct")
		b.ReportMetric(float64(tm)/float64(d), "ratio")
	})

	b.Run("takeover", func(b *testing.B) {
		const kills = 5
		var ds []time.Duration
		for range kills {
			holder := -1
			for holder < 0 {
				holder = so.holderReplica(b, "acme")
				time.Sleep(100 * time.Millisecond)
			}
			so.replicas[holder].stop(syscall.SIGKILL)
			at := time.Now()
			for {
				next := so.holderReplica(b, "acme")
				if next >= 0 && next != holder {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			ds = append(ds, time.Since(at))
			so.replicas[holder].start()
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		b.ReportMetric(ds[len(ds)-1].Seconds(), "s-takeover-max")
		b.ReportMetric(ds[len(ds)/2].Seconds(), "s-takeover-median")
	})
}

// tenantWriteClient is Prometheus's remote-write client straight into the
// engine as tenant.
func tenantWriteClient(tb testing.TB, push, tenant string) remote.WriteClient {
	u, err := url.Parse(push)
	require.NoError(tb, err)
	c, err := remote.NewWriteClient("direct", &remote.ClientConfig{
		URL: &config_util.URL{URL: u}, Timeout: model.Duration(time.Minute), Headers: map[string]string{testservices.TenantHeader: tenant},
	})
	require.NoError(tb, err)
	return c
}
