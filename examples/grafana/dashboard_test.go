// Package grafana_test checks the Grafana example: the provisioned data
// source is well formed, and every panel query, variable query and
// annotation query of the dashboards answers, with data, from a Tidemark
// server holding generated services and change events, sent as Grafana
// sends them.
package grafana_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tidemark/tidemark/config"
	"github.com/tidemark/tidemark/internal/testutil"
	"github.com/tidemark/tidemark/server"
)

const (
	readToken  = "grafana-read-token-0123456789"
	writeToken = "grafana-write-token-0123456789"
)

// startServer runs a Tidemark server in process, as tidemark serve builds
// it, with organization acme.
func startServer(t *testing.T) string {
	opts := server.DefaultOptions()
	opts.ListenAddress = "127.0.0.1:0"
	opts.StoragePath = t.TempDir()
	opts.TokenRequestsPerSecond = 0
	opts.ShutdownTimeout = 5 * time.Second
	cfg := &config.Config{Alerting: config.DefaultAlerting(), Organizations: []config.Organization{{Slug: "acme", Tokens: []config.Token{
		{Name: "grafana", Scope: "read", Value: readToken},
		{Name: "writer", Scope: "write", Value: writeToken},
	}}}}
	opts.Config = cfg
	srv, err := server.New(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	}
	return "http://" + srv.Addr().String()
}

// generate writes 40 minutes of two services' requests and latencies, and
// a deploy of checkout (start, stop) and a config change (a point event),
// labelled by service as the metrics are, so that impact scoring finds the
// deploy's signals.
func generate(t *testing.T, base string, now time.Time) {
	var series []testutil.Series
	for si, svc := range []string{"checkout", "cart"} {
		ok := testutil.Series{Labels: labels.FromStrings("__name__", "http_requests_total", "service", svc, "code", "200")}
		bad := testutil.Series{Labels: labels.FromStrings("__name__", "http_requests_total", "service", svc, "code", "500")}
		buckets := map[string]*testutil.Series{}
		les := []string{"0.1", "0.25", "0.5", "1", "+Inf"}
		for _, le := range les {
			buckets[le] = &testutil.Series{Labels: labels.FromStrings("__name__", "http_request_duration_seconds_bucket", "service", svc, "le", le)}
		}
		var n, errs float64
		for ts := now.Add(-40 * time.Minute); !ts.After(now); ts = ts.Add(15 * time.Second) {
			ms := ts.UnixMilli()
			n += float64(100 * (si + 1))
			errs += float64(si + 1)
			ok.Samples = append(ok.Samples, testutil.Sample{T: ms, V: n})
			bad.Samples = append(bad.Samples, testutil.Sample{T: ms, V: errs})
			for i, le := range les {
				frac := math.Min(1, 0.3+0.2*float64(i))
				buckets[le].Samples = append(buckets[le].Samples, testutil.Sample{T: ms, V: (n + errs) * frac})
			}
		}
		series = append(series, ok, bad)
		for _, le := range les {
			series = append(series, *buckets[le])
		}
	}
	require.NoError(t, testutil.RemoteWrite(t, base+"/api/v1/write", writeToken, false, series))

	events := fmt.Sprintf(`[
		{"event_name":"checkout-v2","event_state":"start","timestamp":%d,"attributes":{"service":"checkout"}},
		{"event_name":"checkout-v2","event_state":"stop","timestamp":%d,"attributes":{"service":"checkout"}},
		{"event_name":"cart-config","event_state":"start","timestamp":%d,"value":1,"attributes":{"service":"cart"}}
	]`, now.Add(-20*time.Minute).Unix(), now.Add(-10*time.Minute).Unix(), now.Add(-5*time.Minute).Unix())
	req, err := http.NewRequest("PUT", base+"/api/v4/organizations/acme/change_events", strings.NewReader(events))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+writeToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", b)
}

// grafana sends a request as Grafana's data source does (queries as form
// POSTs with httpMethod POST, label values as GET; basic auth) and returns
// the Prometheus answer's data.
func grafana(t *testing.T, method, u string, form url.Values) json.RawMessage {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(form.Encode())
	} else {
		u += "?" + form.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	if method == "POST" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth("grafana", readToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, "%s %v: %s", u, form, b)
	var env struct {
		Status   string          `json:"status"`
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal(b, &env))
	require.Equal(t, "success", env.Status, "%s", b)
	require.Empty(t, env.Warnings, "%v: %s", form, b)
	return env.Data
}

// interpolate replaces the Grafana variables the dashboards use; any other
// is an error, so that a new one is added here with a value.
func interpolate(t *testing.T, expr string) string {
	r := strings.NewReplacer("$__rate_interval", "1m", "${__rate_interval}", "1m", "$__interval", "15s", "${service}", ".+", "$service", ".+")
	out := r.Replace(expr)
	require.NotContains(t, out, "$", "a Grafana variable the test does not know: %s", expr)
	return out
}

type rangeResult struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	} `json:"result"`
}

func queryRange(t *testing.T, base, expr string, start, end time.Time, step time.Duration) rangeResult {
	data := grafana(t, "POST", base+"/api/v1/query_range", url.Values{
		"query": {expr}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)},
		"step": {strconv.Itoa(int(step.Seconds()))},
	})
	var r rangeResult
	require.NoError(t, json.Unmarshal(data, &r))
	require.Equal(t, "matrix", r.ResultType)
	return r
}

type dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Type  string          `json:"type"`
			Name  string          `json:"name"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name            string `json:"name"`
			BuiltIn         int    `json:"builtIn"`
			Expr            string `json:"expr"`
			Step            string `json:"step"`
			UseValueForTime bool   `json:"useValueForTime"`
		} `json:"list"`
	} `json:"annotations"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func TestDataSourceProvisioning(t *testing.T) {
	b, err := os.ReadFile("provisioning/datasources/tidemark.yaml")
	require.NoError(t, err)
	var p struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, Access, URL string
			BasicAuth                    bool              `yaml:"basicAuth"`
			BasicAuthUser                string            `yaml:"basicAuthUser"`
			SecureJSONData               map[string]string `yaml:"secureJsonData"`
			JSONData                     map[string]any    `yaml:"jsonData"`
		}
	}
	require.NoError(t, yaml.Unmarshal(b, &p))
	require.Equal(t, 1, p.APIVersion)
	require.Len(t, p.Datasources, 1)
	ds := p.Datasources[0]
	require.Equal(t, "prometheus", ds.Type)
	require.Equal(t, "proxy", ds.Access)
	require.Equal(t, "${TIDEMARK_URL}/api/v4/organizations/${TIDEMARK_ORG}/prometheus", ds.URL)
	require.True(t, ds.BasicAuth)
	require.Equal(t, "${TIDEMARK_TOKEN}", ds.SecureJSONData["basicAuthPassword"])
	require.Equal(t, "Prometheus", ds.JSONData["prometheusType"])
	require.Equal(t, "POST", ds.JSONData["httpMethod"])

	// The dashboards refer to the data source by variable; its default is
	// the provisioned uid.
	d := loadDashboard(t, "dashboards/tidemark-red.json")
	require.Contains(t, d.Templating.List[0].Type, "datasource")
}

func loadDashboard(t *testing.T, path string) dashboard {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	require.NoError(t, dec.Decode(&d), path)
	return d
}

// TestDashboardQueries runs every query of every dashboard.
func TestDashboardQueries(t *testing.T) {
	base := startServer(t) + "/api/v4/organizations/acme/prometheus"
	now := time.Now().Truncate(15 * time.Second)
	generate(t, strings.TrimSuffix(base, "/api/v4/organizations/acme/prometheus"), now)
	// The deploy's after window has passed: the impact scorer scores it
	// within a pass or two, and writes its series at that time.
	end := now.Add(2 * time.Minute)
	require.Eventually(t, func() bool {
		r := queryRange(t, base, `change_event_impact_score`, now.Add(-time.Hour), end, 15*time.Second)
		return len(r.Result) > 0
	}, 90*time.Second, time.Second, "the deploy is never scored")
	start := now.Add(-time.Hour)

	paths, err := filepath.Glob("dashboards/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, path := range paths {
		d := loadDashboard(t, path)
		t.Run(d.Title, func(t *testing.T) {
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				var q struct {
					Query string `json:"query"`
				}
				require.NoError(t, json.Unmarshal(v.Query, &q))
				// label_values(metric, label): Grafana asks the label values API.
				inner, ok := strings.CutPrefix(q.Query, "label_values(")
				require.True(t, ok, "variable %s: only label_values(metric, label) is run here: %s", v.Name, q.Query)
				metric, label, ok := strings.Cut(strings.TrimSuffix(inner, ")"), ",")
				require.True(t, ok)
				data := grafana(t, "GET", base+"/api/v1/label/"+strings.TrimSpace(label)+"/values", url.Values{"match[]": {strings.TrimSpace(metric)},
					"start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}})
				var vals []string
				require.NoError(t, json.Unmarshal(data, &vals))
				require.ElementsMatch(t, []string{"cart", "checkout"}, vals, "variable %s", v.Name)
			}
			var all []panel
			for _, p := range d.Panels {
				all = append(all, p)
				all = append(all, p.Panels...)
			}
			n := 0
			for _, p := range all {
				for _, tg := range p.Targets {
					n++
					r := queryRange(t, base, interpolate(t, tg.Expr), start, end, 15*time.Second)
					require.NotEmpty(t, r.Result, "panel %q, query %s: no data", p.Title, tg.RefID)
				}
				if p.Type != "row" {
					require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
				}
			}
			require.NotZero(t, n)
			for _, a := range d.Annotations.List {
				if a.BuiltIn == 1 {
					continue
				}
				step := 60 * time.Second // Grafana's default annotation step
				if a.Step != "" {
					step, err = time.ParseDuration(a.Step)
					require.NoError(t, err)
				}
				r := queryRange(t, base, interpolate(t, a.Expr), start, end, step)
				// As Grafana turns the points into events: those above 0;
				// with useValueForTime the value is the event's time in ms.
				events := 0
				for _, s := range r.Result {
					for _, v := range s.Values {
						f, err := strconv.ParseFloat(v[1].(string), 64)
						require.NoError(t, err)
						if a.UseValueForTime {
							require.InDelta(t, float64(now.UnixMilli()), f, float64(time.Hour.Milliseconds()), "annotation %q: value is not a time in ms", a.Name)
						}
						if f > 0 {
							events++
						}
					}
				}
				require.NotZero(t, events, "annotation %q: no events", a.Name)
			}
		})
	}
}
