package testservices

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testutil"
)

// writeClient is Prometheus's own remote-write client sending as tenant.
func writeClient(t *testing.T, pushURL, tenant string, msg remoteapi.WriteMessageType) remote.WriteClient {
	u, err := url.Parse(pushURL)
	require.NoError(t, err)
	c, err := remote.NewWriteClient("cortex", &remote.ClientConfig{
		URL:           &config_util.URL{URL: u},
		Timeout:       model.Duration(30 * time.Second),
		Headers:       map[string]string{TenantHeader: tenant},
		WriteProtoMsg: msg,
	})
	require.NoError(t, err)
	return c
}

// queryAPI is client_golang's Prometheus API client asking as tenant.
func queryAPI(t *testing.T, c *CortexServer, tenant string) promv1.API {
	ac, err := api.NewClient(api.Config{Address: c.QueryURL, RoundTripper: TenantRoundTripper(tenant, nil)})
	require.NoError(t, err)
	return promv1.NewAPI(ac)
}

func push(t *testing.T, c *CortexServer, tenant string, series []testutil.Series) error {
	_, err := writeClient(t, c.PushURL, tenant, remoteapi.WriteV1MessageType).Store(context.Background(), testutil.EncodeV1(t, series), 0)
	return err
}

// rawPush sends an encoded write request as tenant and returns the status
// and body of the answer, for the cases where the status is the point.
func rawPush(t *testing.T, c *CortexServer, tenant, contentType, version string, body []byte) (int, string) {
	req, err := http.NewRequest(http.MethodPost, c.PushURL, strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Prometheus-Remote-Write-Version", version)
	resp, err := c.Client(tenant).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func series(name string, samples ...testutil.Sample) testutil.Series {
	return testutil.Series{Labels: labels.FromStrings("__name__", name, "job", "harness"), Samples: samples}
}

// TestCortex runs the contracts Tidemark's remote storage will rely on
// against one Cortex: tenants are isolated, a fresh sample is queryable at
// once, old samples are taken within the out-of-order window, and the
// answers to refused writes.
func TestCortex(t *testing.T) {
	c := Cortex(t,
		CortexTenantLimits("limited", map[string]any{"ingestion_rate": 1, "ingestion_burst_size": 5}),
		CortexTenantLimits("fewseries", map[string]any{"max_global_series_per_user": 1}),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now := time.Now().Truncate(time.Second)

	t.Run("tenant sees its own series only", func(t *testing.T) {
		ts := []int64{now.Add(-2 * time.Minute).UnixMilli(), now.Add(-time.Minute).UnixMilli(), now.UnixMilli()}
		require.NoError(t, push(t, c, "a", []testutil.Series{
			series("harness_requests_total", testutil.Sample{T: ts[0], V: 1}, testutil.Sample{T: ts[1], V: 2}, testutil.Sample{T: ts[2], V: 3}),
		}))

		// Right after the push's 2xx, from the ingesters.
		v, _, _, err := queryAPI(t, c, "a").Query(ctx, `harness_requests_total{job="harness"}`, now)
		require.NoError(t, err)
		vec, ok := v.(model.Vector)
		require.True(t, ok, "%T", v)
		require.Len(t, vec, 1)
		require.Equal(t, model.SampleValue(3), vec[0].Value)
		require.Equal(t, model.LabelValue("harness"), vec[0].Metric["job"])

		m, _, _, err := queryAPI(t, c, "a").QueryRange(ctx, `harness_requests_total`, promv1.Range{Start: now.Add(-2 * time.Minute), End: now, Step: time.Minute})
		require.NoError(t, err)
		mat := m.(model.Matrix)
		require.Len(t, mat, 1)
		var got []float64
		for _, p := range mat[0].Values {
			got = append(got, float64(p.Value))
		}
		require.Equal(t, []float64{1, 2, 3}, got)

		v, _, _, err = queryAPI(t, c, "b").Query(ctx, `harness_requests_total`, now)
		require.NoError(t, err)
		require.Empty(t, v.(model.Vector), "tenant b sees tenant a's series")
		names, _, _, err := queryAPI(t, c, "b").LabelValues(ctx, "__name__", nil, now.Add(-time.Hour), now)
		require.NoError(t, err)
		require.Empty(t, names)
	})

	t.Run("a request without a tenant is refused", func(t *testing.T) {
		resp, err := http.Get(c.QueryURL + "/api/v1/query?query=up")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", b)
		t.Logf("no tenant: %d %s", resp.StatusCode, b)
	})

	t.Run("a sample three days old is accepted", func(t *testing.T) {
		// Older than the head of a series that has newer samples: out of order.
		old := now.Add(-72 * time.Hour)
		require.NoError(t, push(t, c, "a", []testutil.Series{
			series("harness_requests_total", testutil.Sample{T: old.UnixMilli(), V: 42}),
			series("harness_backfilled", testutil.Sample{T: old.UnixMilli(), V: 7}),
		}))
		for name, want := range map[string]model.SampleValue{"harness_requests_total": 42, "harness_backfilled": 7} {
			v, _, _, err := queryAPI(t, c, "a").Query(ctx, name, old)
			require.NoError(t, err)
			vec := v.(model.Vector)
			require.Len(t, vec, 1, name)
			require.Equal(t, want, vec[0].Value, name)
		}
	})

	t.Run("a sample older than the window is refused with 400", func(t *testing.T) {
		err := push(t, c, "a", []testutil.Series{
			series("harness_requests_total", testutil.Sample{T: now.Add(-CortexOOOWindow - 24*time.Hour).UnixMilli(), V: 1}),
		})
		require.Error(t, err)
		t.Logf("too old: %v", err)
		require.Contains(t, err.Error(), "400")
		require.Contains(t, err.Error(), "too old sample")
		var rerr remote.RecoverableError
		require.NotErrorAs(t, err, &rerr, "a client would retry it")
	})

	t.Run("remote read", func(t *testing.T) {
		u, err := url.Parse(c.QueryURL + "/api/v1/read")
		require.NoError(t, err)
		rc, err := remote.NewReadClient("cortex", &remote.ClientConfig{
			URL: &config_util.URL{URL: u}, Timeout: model.Duration(30 * time.Second),
			Headers: map[string]string{TenantHeader: "a"},
		})
		require.NoError(t, err)
		ss, err := rc.Read(ctx, &prompb.Query{
			StartTimestampMs: now.Add(-5 * time.Minute).UnixMilli(), EndTimestampMs: now.UnixMilli(),
			Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "harness_requests_total"}},
		}, true)
		require.NoError(t, err)
		var n int
		for ss.Next() {
			it := ss.At().Iterator(nil)
			for it.Next() != 0 {
				n++
			}
			require.NoError(t, it.Err())
		}
		require.NoError(t, ss.Err())
		require.Equal(t, 3, n)
	})

	t.Run("otlp", func(t *testing.T) {
		body := testutil.OTLPGauge(t, "checkout", "harness.queue.depth", map[string]string{"queue": "orders"}, now, 5)
		req, err := http.NewRequest(http.MethodPost, c.OTLPURL, strings.NewReader(string(body)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := c.Client("a").Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		v, _, _, err := queryAPI(t, c, "a").Query(ctx, `harness_queue_depth{queue="orders"}`, now)
		require.NoError(t, err)
		vec := v.(model.Vector)
		require.Len(t, vec, 1)
		require.Equal(t, model.SampleValue(5), vec[0].Value)
		require.Equal(t, model.LabelValue("checkout"), vec[0].Metric["job"], "service.name becomes job")
	})

	t.Run("remote write 2.0 is refused unless enabled", func(t *testing.T) {
		body := testutil.EncodeV2(t, []testutil.Series{series("harness_v2", testutil.Sample{T: now.UnixMilli(), V: 1})})
		code, msg := rawPush(t, c, "a", "application/x-protobuf;proto=io.prometheus.write.v2.Request", "2.0.0", body)
		require.Equal(t, http.StatusUnsupportedMediaType, code, msg)
		t.Logf("remote write 2.0: %d %s", code, msg)
	})

	t.Run("a tenant over its ingestion rate gets 429", func(t *testing.T) {
		var samples []testutil.Sample
		for i := range 10 {
			samples = append(samples, testutil.Sample{T: now.Add(time.Duration(i-10) * time.Second).UnixMilli(), V: float64(i)})
		}
		code, msg := rawPush(t, c, "limited", "application/x-protobuf", "0.1.0",
			testutil.EncodeV1(t, []testutil.Series{series("harness_limited", samples...)}))
		require.Equal(t, http.StatusTooManyRequests, code, msg)
		t.Logf("over the ingestion rate: %d %s", code, msg)
		// The other tenants are not limited by it.
		require.NoError(t, push(t, c, "a", []testutil.Series{series("harness_unlimited", samples...)}))
	})

	t.Run("a tenant over its series limit gets 400", func(t *testing.T) {
		one := testutil.Sample{T: now.UnixMilli(), V: 1}
		require.NoError(t, push(t, c, "fewseries", []testutil.Series{series("harness_first", one)}))
		code, msg := rawPush(t, c, "fewseries", "application/x-protobuf", "0.1.0",
			testutil.EncodeV1(t, []testutil.Series{series("harness_second", one)}))
		require.Equal(t, http.StatusBadRequest, code, msg)
		t.Logf("over the series limit: %d %s", code, msg)
	})
}

// TestCortexQueryErrors records how Cortex answers queries it refuses.
func TestCortexQueryErrors(t *testing.T) {
	c := Cortex(t, CortexTenantLimits("smallqueries", map[string]any{"max_fetched_series_per_query": 1}))
	now := time.Now()
	one := testutil.Sample{T: now.UnixMilli(), V: 1}
	require.NoError(t, push(t, c, "smallqueries", []testutil.Series{series("harness_one", one), series("harness_two", one)}))

	get := func(tenant, query string) (int, string) {
		// With no time, Cortex's query frontend evaluates at the start of
		// the current second and misses the sample just written.
		at := strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', 3, 64)
		resp, err := c.Client(tenant).Get(c.QueryURL + "/api/v1/query?" + url.Values{"query": {query}, "time": {at}}.Encode())
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	for _, tc := range []struct {
		name, tenant, query string
		code                int
		body                string
	}{
		{"a bad query: Prometheus's shape", "smallqueries", "sum(", http.StatusBadRequest, `"errorType":"bad_data"`},
		{"within the query limit", "smallqueries", "harness_one", http.StatusOK, `"__name__":"harness_one"`},
		{"over the query's series limit", "smallqueries", `{__name__=~"harness_.*"}`, http.StatusUnprocessableEntity, `"errorType":"execution"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(tc.tenant, tc.query)
			t.Logf("%s: %d %s", tc.query, code, body)
			require.Equal(t, tc.code, code, body)
			require.Contains(t, body, tc.body)
		})
	}
}

// TestCortexBinary builds (or finds) the Cortex binary, so that a CI step
// can build it before the packages that start Cortex run in parallel.
func TestCortexBinary(t *testing.T) {
	path := CortexBinary(t)
	require.FileExists(t, path)
	require.Contains(t, path, CortexVersion)
	t.Logf("cortex binary: %s", path)
}
