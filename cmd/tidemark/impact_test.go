package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/impact/scenario"
	"github.com/tidemark/tidemark/internal/testutil"
)

const impactRules = `name: checkout
rules:
  - alert: CheckoutErrorRatio
    expr: |
      sum by (service, env) (rate(http_requests_total{code=~"5.."}[5m]))
        / sum by (service, env) (rate(http_requests_total[5m])) > 0.02
    labels: {severity: page}
`

// listedImpact is a listed event with its impact.
type listedImpact struct {
	ID     string            `json:"id"`
	Name   string            `json:"event_name"`
	Labels map[string]string `json:"labels"`
	Impact *struct {
		Verdict  string `json:"verdict"`
		ScoredAt string `json:"scored_at"`
		Signals  []struct {
			Name           string   `json:"name"`
			Classification string   `json:"classification"`
			Verdict        string   `json:"verdict"`
			PValue         *float64 `json:"p_value"`
			Effect         *float64 `json:"effect"`
		} `json:"signals"`
	} `json:"impact"`
}

func listImpacts(t *testing.T, srv *binServer) map[string]listedImpact {
	req, _ := http.NewRequest("GET", srv.url+"/api/v4/organizations/acme/change_events?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+acmeRead)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var page struct{ Events []listedImpact }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	out := map[string]listedImpact{}
	for _, e := range page.Events {
		out[e.ID] = e
	}
	return out
}

// TestImpactEndToEnd: the mixed scenario written to the real binary (its
// RED metrics by remote write, its changes backdated through the events
// API) is scored without anyone asking: the bad deploy is degraded on its
// error ratio and latency, the other changes no_change or no_data; the
// impact series are queryable; an alert on the bad service names the bad
// deploy first among its suspects; a restart scores nothing again.
func TestImpactEndToEnd(t *testing.T) {
	rc := &receiver{}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tidemark.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
organizations:
  - slug: acme
    tokens:
      - {name: grafana, scope: read, value: `+acmeRead+`}
      - {name: ci, scope: write, value: `+acmeWrite+`}
alerting:
  webhook_urls: ["`+hook.URL+`/hook"]
  evaluation_interval: 1s
  resend_delay: 2s
  sync_interval: 1s
impact:
  delay: 1s
`), 0o644))
	srv := startServer(t, dir, "--config.file="+cfg)
	orgBase := srv.url + "/api/v4/organizations/acme/prometheus"

	end := time.Now().Truncate(time.Second)
	sc := scenario.Mixed(11, end)
	var series []testutil.Series
	for _, s := range sc.Series() {
		ts := testutil.Series{Labels: s.Labels}
		for _, p := range s.Samples {
			ts.Samples = append(ts.Samples, testutil.Sample{T: p.T, V: p.V})
		}
		series = append(series, ts)
	}
	_, err := testutil.WriteClient(t, orgBase+"/api/v1/write", acmeWrite, false, false).Store(context.Background(), testutil.EncodeV1(t, series), 0)
	require.NoError(t, err)
	body, err := json.Marshal(sc.Events())
	require.NoError(t, err)
	putEvents(t, srv, string(body))

	// Scored at the next pass: every change whose after window is past.
	var got map[string]listedImpact
	require.Eventually(t, func() bool {
		got = listImpacts(t, srv)
		return got[sc.EventID(scenario.MixedCheckoutV2)].Impact != nil && got[sc.EventID(scenario.MixedCheckoutV1)].Impact != nil
	}, 40*time.Second, 200*time.Millisecond, "not scored; log:\n%s", srv.log)
	for i, c := range sc.Changes {
		e := got[sc.EventID(i)]
		if c.Expect == "" {
			require.Nil(t, e.Impact, "%s: its after window has not passed", e.ID)
			continue
		}
		require.NotNil(t, e.Impact, "%s %s %v", e.ID, e.Name, e.Labels)
		require.Equal(t, c.Expect, e.Impact.Verdict, "%s %s %v: %+v", e.ID, e.Name, e.Labels, e.Impact.Signals)
		t.Logf("%-14s %-9s %-16s %s", c.EventName, c.Service, c.Kind, e.Impact.Verdict)
	}
	bad := got[sc.EventID(scenario.MixedCheckoutV2)]
	degraded := map[string]bool{}
	for _, si := range bad.Impact.Signals {
		degraded[si.Name] = si.Verdict == "degraded"
	}
	require.Equal(t, map[string]bool{"error-ratio": true, "latency-p99": true, "latency-mean": true}, degraded)

	// The series.
	p := promClient(t, orgBase, acmeRead)
	vec := instant(t, p, `change_event_impact_score{version="checkout-v2"}`, time.Now())
	require.Len(t, vec, 1)
	require.Equal(t, model.SampleValue(0), vec[0].Value)
	vec = instant(t, p, `change_event_impact{version="checkout-v2", signal="error-ratio"}`, time.Now())
	require.Len(t, vec, 1)
	require.Greater(t, float64(vec[0].Value), 3.0)
	vec = instant(t, p, `count(last_over_time(change_event_impact_score[1h]) == 100)`, time.Now())
	require.Len(t, vec, 1)
	require.Equal(t, model.SampleValue(5), vec[0].Value, "the healthy changes with data")

	// The recipes of docs/impact.md run, and the first finds the bad
	// deploy alone.
	doc, err := os.ReadFile("../../docs/impact.md")
	require.NoError(t, err)
	recipes := regexp.MustCompile("(?s)```promql\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	require.GreaterOrEqual(t, len(recipes), 5)
	for _, r := range recipes {
		_, _, _, err := p.Query(context.Background(), r[1], time.Now())
		require.NoError(t, err, r[1])
	}
	vec = instant(t, p, recipes[0][1], time.Now())
	require.Len(t, vec, 1, "deploys that degraded anything")
	require.Equal(t, model.LabelValue("checkout-v2"), vec[0].Metric["version"])

	// An alert on checkout names the bad deploy first.
	req, err := http.NewRequest("POST", orgBase+"/config/v1/rules/impact", strings.NewReader(impactRules))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+acmeWrite)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 202, resp.StatusCode)
	var alert map[string]string
	require.Eventually(t, func() bool {
		rc.mtx.Lock()
		defer rc.mtx.Unlock()
		for _, h := range rc.hooks {
			for _, a := range h.Alerts {
				if a.Labels["alertname"] == "CheckoutErrorRatio" {
					alert = a.Annotations
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "no alert; log:\n%s", srv.log)
	t.Logf("suspected_changes:\n%s", alert["suspected_changes"])
	var suspects []struct {
		Name    string            `json:"name"`
		Labels  map[string]string `json:"labels"`
		Verdict string            `json:"verdict"`
		Reason  string            `json:"reason"`
	}
	require.NoError(t, json.Unmarshal([]byte(alert["suspected_changes_json"]), &suspects))
	require.GreaterOrEqual(t, len(suspects), 2)
	require.Equal(t, "checkout-v2", suspects[0].Labels["version"])
	require.Equal(t, "degraded", suspects[0].Verdict)
	require.True(t, strings.HasPrefix(suspects[0].Reason, "deploy checkout-v2: error-ratio ×"), suspects[0].Reason)
	require.Contains(t, suspects[0].Reason, "m before the alert")
	require.True(t, strings.HasPrefix(alert["suspected_changes"], "1. deploy checkout-v2: "), alert["suspected_changes"])
	for _, s := range suspects {
		require.Equal(t, "checkout", s.Labels["service"], "only checkout's changes: %s", s.Reason)
	}

	// The scorer's own metrics.
	metrics := getMetrics(t, srv)
	require.Contains(t, metrics, `tidemark_impact_events_scored_total{verdict="degraded"} 1`)
	require.Contains(t, metrics, `tidemark_impact_events_scored_total{verdict="no_data"} 1`)
	require.Contains(t, metrics, `tidemark_impact_scoring_duration_seconds_count`)

	// A restart scores nothing again.
	srv.restart()
	time.Sleep(3 * time.Second)
	again := listImpacts(t, srv)
	require.Equal(t, bad.Impact.ScoredAt, again[bad.ID].Impact.ScoredAt)
	require.NotContains(t, getMetrics(t, srv), `tidemark_impact_events_scored_total{`)
}

func getMetrics(t *testing.T, srv *binServer) string {
	resp, err := http.Get(srv.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
