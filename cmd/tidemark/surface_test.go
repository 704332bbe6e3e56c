package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testservices"
	"github.com/tidemark/tidemark/internal/testutil"
)

// grafanaRequest sends a request as Grafana's Prometheus data source does
// (basic auth with the token as password, form-encoded POST) and checks
// that the answer is Prometheus's success envelope.
func grafanaRequest(t *testing.T, method, u, token string, form url.Values) json.RawMessage {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(form.Encode())
	} else if len(form) > 0 {
		u += "?" + form.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	if method == "POST" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "Grafana/12.0.0")
	req.Header.Set("Accept", "application/json, text/plain, */*")
	req.SetBasicAuth("grafana", token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, "%s %s: %s", method, u, b)
	require.Contains(t, resp.Header.Get("Content-Type"), "application/json")
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &env), "%s", b)
	require.Equal(t, "success", env.Status, "%s", b)
	return env.Data
}

// TestPrometheusSurfaceEndToEnd: the real binary answers Grafana's requests
// to every route of the Prometheus API, Prometheus's own clients
// (client_golang, promtool), a Prometheus that remote_reads from it, and a
// scraper of /federate.
func TestPrometheusSurfaceEndToEnd(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "--config.file="+writeConfig(t, dir))
	orgBase := srv.url + "/api/v4/organizations/acme/prometheus"
	now := time.Now().Truncate(time.Second)
	ms := now.UnixMilli()

	require.NoError(t, testutil.RemoteWrite(t, orgBase+"/api/v1/write", acmeWrite, false, []testutil.Series{{
		Labels:    labels.FromStrings("__name__", "http_requests_total", "service", "checkout", "code", "200"),
		Samples:   []testutil.Sample{{T: ms - 15000, V: 10}, {T: ms, V: 25}},
		Exemplars: []testutil.Exemplar{{Labels: labels.FromStrings("trace_id", "4bf92f3577b34da6"), T: ms, V: 1}},
		Type:      "counter", Help: "HTTP requests served.",
	}}))

	start, end := url.Values{"start": {fmt.Sprint(now.Add(-time.Hour).Unix())}}, fmt.Sprint(now.Add(time.Minute).Unix())
	start.Set("end", end)
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	for _, base := range []string{orgBase, srv.url} {
		for _, tc := range []struct {
			method, path string
			form         url.Values
		}{
			{"GET", "/api/v1/status/buildinfo", nil},
			{"POST", "/api/v1/query", url.Values{"query": {"sum(rate(http_requests_total[1m]))"}, "time": {fmt.Sprint(now.Unix())}}},
			{"POST", "/api/v1/query_range", with(start, "query", "sum by (code) (rate(http_requests_total[1m]))", "step", "15")},
			{"POST", "/api/v1/query_exemplars", with(start, "query", "http_requests_total")},
			{"GET", "/api/v1/labels", start},
			{"POST", "/api/v1/labels", start},
			{"GET", "/api/v1/label/__name__/values", start},
			{"GET", "/api/v1/label/service/values", with(start, "match[]", "http_requests_total")},
			{"POST", "/api/v1/series", with(start, "match[]", "http_requests_total")},
			{"GET", "/api/v1/metadata", nil},
			{"GET", "/api/v1/metadata", url.Values{"metric": {"http_requests_total"}}},
			{"GET", "/api/v1/format_query", url.Values{"query": {"sum(rate(x[5m]))by(code)"}}},
			{"POST", "/api/v1/parse_query", url.Values{"query": {"up == 1"}}},
			{"GET", "/api/v1/status/tsdb", nil},
			{"GET", "/api/v1/status/flags", nil},
			{"GET", "/api/v1/status/runtimeinfo", nil},
			{"GET", "/api/v1/rules", nil},
			{"GET", "/api/v1/alerts", nil},
		} {
			grafanaRequest(t, tc.method, base+tc.path, acmeRead, tc.form)
		}

		// client_golang's API, as promtool query uses it.
		p := promClient(t, base, acmeRead)
		ctx := context.Background()
		ex, err := p.QueryExemplars(ctx, "http_requests_total", now.Add(-time.Hour), now.Add(time.Minute))
		require.NoError(t, err)
		require.Len(t, ex, 1)
		require.Equal(t, model.LabelValue("4bf92f3577b34da6"), ex[0].Exemplars[0].Labels["trace_id"])
		md, err := p.Metadata(ctx, "http_requests_total", "")
		require.NoError(t, err)
		require.Equal(t, []promv1.Metadata{{Type: "counter", Help: "HTTP requests served.", Unit: ""}}, md["http_requests_total"])
		tsdb, err := p.TSDB(ctx)
		require.NoError(t, err)
		require.NotZero(t, tsdb.HeadStats.NumSeries)
		require.Contains(t, fmt.Sprint(tsdb.SeriesCountByMetricName), "http_requests_total")
		flags, err := p.Flags(ctx)
		require.NoError(t, err)
		require.Equal(t, srv.addr, flags["web.listen-address"])
		rt, err := p.Runtimeinfo(ctx)
		require.NoError(t, err)
		require.Equal(t, "15d", rt.StorageRetention)

		// /federate parses as the text exposition format.
		req, _ := http.NewRequest("GET", base+"/federate?match[]="+url.QueryEscape(`{service="checkout"}`), nil)
		req.Header.Set("Authorization", "Bearer "+acmeRead)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		fed, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, "%s", fed)
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(fed))
		require.NoError(t, err, "%s", fed)
		require.Equal(t, 25.0, fams["http_requests_total"].Metric[0].GetUntyped().GetValue())
	}

	// promtool, Prometheus's own command line client.
	promtool := testservices.PrometheusBinary(t, testservices.PromtoolCmd)
	httpCfg := filepath.Join(dir, "promtool-http.yml")
	require.NoError(t, os.WriteFile(httpCfg, []byte("authorization:\n  credentials: "+acmeRead+"\n"), 0o600))
	out, err := exec.Command(promtool, "query", "instant", "--http.config.file="+httpCfg, "--time="+now.Format(time.RFC3339), orgBase, "sum(http_requests_total)").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "=> 25 @[")
	// promtool check metrics lints what /federate serves (as it would a
	// scrape): no parse errors; untyped federated series only draw
	// lint remarks, which promtool reports with exit status 3.
	req, _ := http.NewRequest("GET", orgBase+"/federate?match[]=http_requests_total", nil)
	req.Header.Set("Authorization", "Bearer "+acmeRead)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	fed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(fed)
	out, err = check.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		require.Equal(t, 3, ee.ExitCode(), "%s", out) // lint problems, not a parse error (1)
	} else {
		require.NoError(t, err, "%s", out)
	}
	require.NotContains(t, string(out), "error while linting")

	// A Prometheus configured with remote_read reads Tidemark's series.
	prom := testservices.PrometheusBinary(t, testservices.PrometheusCmd)
	promDir := t.TempDir()
	promAddr := freeAddr(t)
	cfg := filepath.Join(promDir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
global:
  scrape_interval: 1h
remote_read:
  - url: `+orgBase+`/api/v1/read
    read_recent: true
    basic_auth:
      username: prometheus
      password: `+acmeRead+`
`), 0o600))
	var promLog syncBuffer
	pc := exec.Command(prom, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(promDir, "data"), "--web.listen-address="+promAddr)
	pc.Stdout, pc.Stderr = &promLog, &promLog
	require.NoError(t, pc.Start())
	t.Cleanup(func() {
		pc.Process.Kill()
		pc.Wait()
	})
	waitReady(t, "http://"+promAddr, &promLog)
	vec := instant(t, promClient(t, "http://"+promAddr, ""), `http_requests_total{service="checkout"}`, now)
	require.Len(t, vec, 1, "%s", promLog.String())
	require.Equal(t, model.SampleValue(25), vec[0].Value)
}
