package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	config_util "github.com/prometheus/common/config"
	promconfig "github.com/prometheus/prometheus/config"

	"github.com/tidemark/tidemark/internal/testutil"
	"github.com/tidemark/tidemark/state"
)

// promData decodes a Prometheus API answer and returns its data.
func promData(t *testing.T, code int, body []byte) json.RawMessage {
	t.Helper()
	require.Equal(t, 200, code, "%s", body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &env), "%s", body)
	require.Equal(t, "success", env.Status, "%s", body)
	return env.Data
}

// otlpCounter is an OTLP export with one monotonic sum that has a
// description, a unit and an exemplar.
func otlpCounter(t *testing.T, name string, ts time.Time, v float64) []byte {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	m.SetDescription("Orders placed.")
	m.SetUnit("1")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	dp.SetDoubleValue(v)
	ex := dp.Exemplars().AppendEmpty()
	ex.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	ex.SetDoubleValue(1)
	ex.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	return b
}

// TestPrometheusSurface: exemplars and metadata from remote write 1.0, 2.0
// and OTLP come back from query_exemplars and metadata, per organization;
// format_query, parse_query, status/tsdb, flags, runtimeinfo, remote read
// and federate answer in Prometheus's shapes.
func TestPrometheusSurface(t *testing.T) {
	st := newTestStack(t)
	now := time.Now().Truncate(time.Millisecond)
	ms := now.UnixMilli()
	acme, globex := st.tokens["acme"], st.tokens["globex"]

	// Remote write 1.0: samples with an exemplar, then metadata.
	require.NoError(t, testutil.RemoteWrite(t, st.url+"/api/v1/write", acme[state.ScopeWrite], false, []testutil.Series{{
		Labels:    labels.FromStrings("__name__", "http_requests_total", "service", "checkout", "code", "200"),
		Samples:   []testutil.Sample{{T: ms - 1000, V: 1}, {T: ms, V: 5}},
		Exemplars: []testutil.Exemplar{{Labels: labels.FromStrings("trace_id", "abc123"), T: ms, V: 1}},
		Type:      "counter", Help: "Requests served.",
	}}))
	// Remote write 2.0: a histogram bucket series with metadata and an exemplar.
	require.NoError(t, testutil.RemoteWrite(t, st.url+"/api/v4/organizations/acme/prometheus/api/v1/write", acme[state.ScopeWrite], true, []testutil.Series{{
		Labels:    labels.FromStrings("__name__", "http_request_duration_seconds_bucket", "service", "checkout", "le", "0.5"),
		Samples:   []testutil.Sample{{T: ms, V: 3}},
		Exemplars: []testutil.Exemplar{{Labels: labels.FromStrings("trace_id", "def456"), T: ms, V: 0.3}},
		Type:      "histogram", Help: "Request latency.", Unit: "seconds",
	}}))
	resp := testutil.PostOTLP(t, st.url+"/api/v1/otlp/v1/metrics", acme[state.ScopeWrite], otlpCounter(t, "orders", now, 7))
	require.Equal(t, 200, resp.StatusCode)
	resp.Body.Close()
	// Globex writes a series of its own.
	require.NoError(t, testutil.RemoteWrite(t, st.url+"/api/v1/write", globex[state.ScopeWrite], false, []testutil.Series{{
		Labels:  labels.FromStrings("__name__", "globex_only", "service", "secret"),
		Samples: []testutil.Sample{{T: ms, V: 1}},
		Type:    "gauge", Help: "Globex's.",
	}}))

	for _, base := range []string{st.url, st.url + "/api/v4/organizations/acme/prometheus"} {
		get := func(path string) json.RawMessage {
			code, body := do(t, "GET", base+path, acme[state.ScopeRead], nil, "")
			return promData(t, code, body)
		}
		t.Run("exemplars "+base, func(t *testing.T) {
			q := url.Values{"query": {`{__name__=~"http_requests_total|http_request_duration_seconds_bucket|orders_total"}`}, "start": {formatTime(now.Add(-time.Minute))}, "end": {formatTime(now.Add(time.Minute))}}
			var res []struct {
				SeriesLabels map[string]string `json:"seriesLabels"`
				Exemplars    []struct {
					Labels map[string]string `json:"labels"`
					Value  string            `json:"value"`
				} `json:"exemplars"`
			}
			require.NoError(t, json.Unmarshal(get("/api/v1/query_exemplars?"+q.Encode()), &res))
			traces := map[string]string{}
			for _, r := range res {
				for _, e := range r.Exemplars {
					traces[r.SeriesLabels["__name__"]] = e.Labels["trace_id"]
				}
			}
			require.Equal(t, "abc123", traces["http_requests_total"], "%v", res)
			require.Equal(t, "def456", traces["http_request_duration_seconds_bucket"], "%v", res)
			require.Equal(t, "0102030405060708090a0b0c0d0e0f10", traces["orders_total"], "%v", res)
		})
		t.Run("metadata "+base, func(t *testing.T) {
			var md map[string][]struct{ Type, Help, Unit string }
			require.NoError(t, json.Unmarshal(get("/api/v1/metadata"), &md))
			require.Equal(t, "counter", md["http_requests_total"][0].Type, "%v", md)
			require.Equal(t, "Requests served.", md["http_requests_total"][0].Help)
			require.Equal(t, "histogram", md["http_request_duration_seconds"][0].Type, "%v", md)
			require.Equal(t, "seconds", md["http_request_duration_seconds"][0].Unit)
			require.Equal(t, "counter", md["orders_total"][0].Type, "%v", md)
			require.Equal(t, "Orders placed.", md["orders_total"][0].Help)
			require.NotContains(t, md, "globex_only")
			var one map[string][]struct{ Type, Help, Unit string }
			require.NoError(t, json.Unmarshal(get("/api/v1/metadata?metric=orders_total"), &one))
			require.Len(t, one, 1)
		})
		t.Run("format and parse "+base, func(t *testing.T) {
			require.JSONEq(t, `"sum by (code) (rate(http_requests_total[5m]))"`, string(get("/api/v1/format_query?query="+url.QueryEscape("sum(rate(http_requests_total[5m]))by(code)"))))
			var ast map[string]any
			require.NoError(t, json.Unmarshal(get("/api/v1/parse_query?query="+url.QueryEscape("up == 1")), &ast))
			require.Equal(t, "binaryExpr", ast["type"])
		})
		t.Run("tsdb status "+base, func(t *testing.T) {
			var s struct {
				HeadStats struct {
					NumSeries uint64 `json:"numSeries"`
				} `json:"headStats"`
				SeriesCountByMetricName []struct {
					Name  string `json:"name"`
					Value uint64 `json:"value"`
				} `json:"seriesCountByMetricName"`
			}
			raw := get("/api/v1/status/tsdb")
			require.NoError(t, json.Unmarshal(raw, &s))
			require.NotZero(t, s.HeadStats.NumSeries)
			names := map[string]bool{}
			for _, n := range s.SeriesCountByMetricName {
				names[n.Name] = true
			}
			require.True(t, names["http_requests_total"], "%s", raw)
			require.False(t, names["globex_only"], "%s", raw)
		})
		t.Run("flags and runtime "+base, func(t *testing.T) {
			var flags map[string]string
			require.NoError(t, json.Unmarshal(get("/api/v1/status/flags"), &flags))
			var rt map[string]any
			require.NoError(t, json.Unmarshal(get("/api/v1/status/runtimeinfo"), &rt))
			require.Equal(t, "1d", rt["storageRetention"])
			require.NotZero(t, rt["goroutineCount"])
		})
		t.Run("remote read "+base, func(t *testing.T) {
			u, err := url.Parse(base + "/api/v1/read")
			require.NoError(t, err)
			c, err := remote.NewReadClient("test", &remote.ClientConfig{
				URL:              &config_util.URL{URL: u},
				Timeout:          model.Duration(10 * time.Second),
				ChunkedReadLimit: promconfig.DefaultChunkedReadLimit,
				HTTPClientConfig: config_util.HTTPClientConfig{BasicAuth: &config_util.BasicAuth{Username: "prometheus", Password: config_util.Secret(acme[state.ScopeRead])}},
			})
			require.NoError(t, err)
			ss, err := c.Read(context.Background(), &prompb.Query{
				StartTimestampMs: ms - 60000, EndTimestampMs: ms + 1000,
				Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "http_requests_total"}},
			}, false)
			require.NoError(t, err)
			n := 0
			for ss.Next() {
				require.Equal(t, "checkout", ss.At().Labels().Get("service"))
				n++
			}
			require.NoError(t, ss.Err())
			require.Equal(t, 1, n)
		})
		t.Run("federate "+base, func(t *testing.T) {
			code, body := do(t, "GET", base+"/federate?match[]="+url.QueryEscape(`{service=~".+"}`), acme[state.ScopeRead], nil, "")
			require.Equal(t, 200, code, "%s", body)
			p := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
			require.NoError(t, err, "%s", body)
			require.Contains(t, fams, "http_requests_total")
			require.NotContains(t, fams, "globex_only")
			m := fams["http_requests_total"].Metric[0]
			require.Equal(t, 5.0, m.GetUntyped().GetValue())
			require.Equal(t, ms, m.GetTimestampMs())
			require.Contains(t, string(body), `instance=""`)
		})
	}
	// Globex sees its own only.
	code, body := do(t, "GET", st.url+"/api/v1/metadata", globex[state.ScopeRead], nil, "")
	require.JSONEq(t, `{"globex_only":[{"type":"gauge","help":"Globex's.","unit":""}]}`, string(promData(t, code, body)))
}

func formatTime(t time.Time) string {
	return strings.TrimSuffix(strings.TrimRight(time.Unix(0, t.UnixNano()).UTC().Format("2006-01-02T15:04:05.000Z"), "Z"), ".") + "Z"
}

// TestRemoteWriteUnsupportedContent: 415 for a Content-Type or encoding that
// is not remote write's, as the remote-write 2.0 specification says.
func TestRemoteWriteUnsupportedContent(t *testing.T) {
	st := newTestStack(t)
	tok := st.tokens["acme"][state.ScopeWrite]
	body := testutil.EncodeV1(t, []testutil.Series{{Labels: labels.FromStrings("__name__", "x"), Samples: []testutil.Sample{{T: time.Now().UnixMilli(), V: 1}}}})
	for _, tc := range []struct {
		name, ctype, enc string
		body             []byte
		code             int
	}{
		{"json", "application/json", "", []byte(`{"a":1}`), http.StatusUnsupportedMediaType},
		{"text", "text/plain", "snappy", body, http.StatusUnsupportedMediaType},
		{"unknown proto", "application/x-protobuf;proto=io.prometheus.write.v3.Request", "snappy", body, http.StatusUnsupportedMediaType},
		{"gzip", "application/x-protobuf", "gzip", body, http.StatusUnsupportedMediaType},
		{"remote write 1.0", "application/x-protobuf", "snappy", body, http.StatusNoContent},
		{"no content type", "", "snappy", body, http.StatusNoContent},
		{"not snappy", "application/x-protobuf", "snappy", []byte("nope"), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, u := range []string{st.url + "/api/v1/write", st.url + "/api/v4/organizations/acme/prometheus/api/v1/write"} {
				req, err := http.NewRequest("POST", u, bytes.NewReader(tc.body))
				require.NoError(t, err)
				if tc.ctype != "" {
					req.Header.Set("Content-Type", tc.ctype)
				}
				if tc.enc != "" {
					req.Header.Set("Content-Encoding", tc.enc)
				}
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				var b bytes.Buffer
				b.ReadFrom(resp.Body)
				resp.Body.Close()
				require.Equal(t, tc.code, resp.StatusCode, "%s", b.String())
				if tc.code == http.StatusUnsupportedMediaType {
					require.Contains(t, b.String(), "is not accepted")
				}
			}
		})
	}
}
