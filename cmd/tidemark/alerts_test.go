package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/models"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testutil"
)

// receiver implements Alertmanager's POST /api/v2/alerts, decoding and
// validating every body with Alertmanager's own API models, and a plain
// webhook at /hook.
type receiver struct {
	mtx     sync.Mutex
	alerts  models.PostableAlerts
	hooks   []hookPayload
	invalid []string
}

// hookPayload is the documented webhook body (docs/alerts.md).
type hookPayload struct {
	Version string `json:"version"`
	Org     string `json:"org"`
	Alerts  []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		ChangeEvents []contextEvent    `json:"change_events"`
	} `json:"alerts"`
}

// contextEvent is an element of change_events_json.
type contextEvent struct {
	Name      string            `json:"name"`
	State     string            `json:"state"`
	Timestamp string            `json:"timestamp"`
	Labels    map[string]string `json:"labels"`
	Links     []struct{ Href, Text string }
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mtx.Lock()
	defer rc.mtx.Unlock()
	switch {
	case r.Method == "POST" && r.URL.Path == "/api/v2/alerts":
		var alerts models.PostableAlerts
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&alerts); err != nil {
			rc.invalid = append(rc.invalid, "decode: "+err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := alerts.Validate(strfmt.Default); err != nil {
			rc.invalid = append(rc.invalid, "validate: "+err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.alerts = append(rc.alerts, alerts...)
	case r.Method == "POST" && r.URL.Path == "/hook":
		var p hookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			rc.invalid = append(rc.invalid, "webhook: "+err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.hooks = append(rc.hooks, p)
	default:
		rc.invalid = append(rc.invalid, "unexpected "+r.Method+" "+r.URL.Path)
		http.NotFound(w, r)
	}
}

func (rc *receiver) firstAlert(name string) *models.PostableAlert {
	rc.mtx.Lock()
	defer rc.mtx.Unlock()
	for _, a := range rc.alerts {
		if a.Labels["alertname"] == name {
			return a
		}
	}
	return nil
}

// canaryWriter remote-writes the request counters of a canary with a 10%
// error ratio every second until ctx ends. Writes while the server is
// down fail and are skipped.
func canaryWriter(ctx context.Context, t *testing.T, url string) {
	rw := testutil.WriteClient(t, url, acmeWrite, false, false)
	start := time.Now().Add(-30 * time.Second)
	write := func(ts time.Time) error {
		secs := ts.Sub(start).Seconds()
		series := func(code string, perSec float64) testutil.Series {
			return testutil.Series{
				Labels:  labels.FromStrings("__name__", "http_requests_total", "service", "checkout", "env", "prod", "track", "canary", "code", code),
				Samples: []testutil.Sample{{T: ts.UnixMilli(), V: perSec * secs}},
			}
		}
		_, err := rw.Store(ctx, testutil.EncodeV1(t, []testutil.Series{series("200", 90), series("500", 10)}), 0)
		return err
	}
	for ts := start; ts.Before(time.Now()); ts = ts.Add(5 * time.Second) {
		require.NoError(t, write(ts))
	}
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				write(now)
			}
		}
	}()
}

const canaryRules = `name: checkout-canary
interval: 1s
rules:
  - alert: CheckoutCanaryErrorRatio
    expr: |
      sum by (service, env) (rate(http_requests_total{service="checkout",track="canary",code=~"5.."}[1m]))
        / sum by (service, env) (rate(http_requests_total{service="checkout",track="canary"}[1m])) > 0.05
    for: 3s
    labels:
      severity: page
    annotations:
      summary: 'checkout canary error ratio is {{ $value | humanizePercentage }}'
  - alert: CheckoutCanaryErrorRatioSustained
    expr: |
      sum by (service, env) (rate(http_requests_total{service="checkout",track="canary",code=~"5.."}[1m]))
        / sum by (service, env) (rate(http_requests_total{service="checkout",track="canary"}[1m])) > 0.05
    for: 10m
    labels:
      severity: ticket
  - record: service:http_requests:rate1m
    expr: sum by (service, env, code) (rate(http_requests_total[1m]))
`

func putEvents(t *testing.T, srv *binServer, body string) {
	req, err := http.NewRequest("PUT", srv.url+"/api/v4/organizations/acme/change_events", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+acmeWrite)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", b)
}

func findAlert(t *testing.T, p promv1.API, name string) (promv1.Alert, bool) {
	res, err := p.Alerts(context.Background())
	require.NoError(t, err)
	for _, a := range res.Alerts {
		if string(a.Labels["alertname"]) == name {
			return a, true
		}
	}
	return promv1.Alert{}, false
}

func TestAlertsEndToEnd(t *testing.T) {
	rc := &receiver{}
	am := httptest.NewServer(rc)
	defer am.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "tidemark.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
organizations:
  - slug: acme
    tokens:
      - {name: grafana, scope: read, value: `+acmeRead+`}
      - {name: ci, scope: write, value: `+acmeWrite+`}
alerting:
  alertmanager_urls: ["`+am.URL+`"]
  webhook_urls: ["`+am.URL+`/hook"]
  external_url: https://tidemark.example
  evaluation_interval: 1s
  resend_delay: 2s
  sync_interval: 1s
  for_grace_period: 1s
  change_context:
    lookback: 30m
`), 0o644))
	srv := startServer(t, dir, "--config.file="+cfg)
	orgBase := srv.url + "/api/v4/organizations/acme/prometheus"
	now := time.Now().UTC()

	// The deploy of the service shortly before; a change of another
	// service in the same env; the same service's deploy hours ago.
	old := now.Add(-3 * time.Hour)
	putEvents(t, srv, fmt.Sprintf(`[
	  {"event_name": "checkout-deploy", "timestamp": %q, "attributes": {"service": "checkout", "env": "prod", "version": "v2.4.1"},
	   "links": [{"href": "https://ci.example/run/42", "text": "pipeline"}, {"href": "https://git.example/c/9f2c1e7"}]},
	  {"event_name": "billing-flag", "timestamp": %q, "attributes": {"service": "billing", "env": "prod"}},
	  {"event_name": "checkout-deploy-old", "timestamp": %q, "attributes": {"service": "checkout", "env": "prod"}},
	  {"event_name": "checkout-deploy-old", "event_state": "stop", "timestamp": %q, "attributes": {"service": "checkout", "env": "prod"}}
	]`, now.Add(-2*time.Minute).Format(time.RFC3339), now.Add(-time.Minute).Format(time.RFC3339),
		old.Format(time.RFC3339), old.Add(time.Minute).Format(time.RFC3339)))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	canaryWriter(ctx, t, orgBase+"/api/v1/write")

	// The rule group, through the ruler API.
	req, err := http.NewRequest("POST", orgBase+"/config/v1/rules/canary", strings.NewReader(canaryRules))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+acmeWrite)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 202, resp.StatusCode)

	// It fires after its `for` and reaches the Alertmanager.
	var got *models.PostableAlert
	require.Eventually(t, func() bool {
		got = rc.firstAlert("CheckoutCanaryErrorRatio")
		return got != nil
	}, 30*time.Second, 100*time.Millisecond, "no alert reached the receiver; log:\n%s", srv.log)
	rc.mtx.Lock()
	require.Empty(t, rc.invalid, "bodies Alertmanager's models refuse")
	rc.mtx.Unlock()

	require.Equal(t, models.LabelSet{
		"alertname": "CheckoutCanaryErrorRatio", "service": "checkout", "env": "prod", "severity": "page", "org": "acme",
	}, got.Labels)
	require.Equal(t, "checkout canary error ratio is 10%", got.Annotations["summary"])
	require.True(t, strings.HasPrefix(got.GeneratorURL.String(), "https://tidemark.example/graph?g0.expr="), got.GeneratorURL)
	require.False(t, time.Time(got.StartsAt).IsZero())

	text := got.Annotations["change_events"]
	t.Logf("change_events:\n%s\nchange_events_json: %s", text, got.Annotations["change_events_json"])
	deployedAt := now.Add(-2 * time.Minute).Truncate(time.Second).Format("2006-01-02T15:04:05.000Z07:00")
	require.Contains(t, text, "checkout-deploy start at "+deployedAt)
	require.Contains(t, text, `{env="prod", service="checkout", version="v2.4.1"} pipeline: https://ci.example/run/42`)
	require.NotContains(t, text, "billing", "an unrelated service's event")
	require.NotContains(t, text, "checkout-deploy-old", "an event long before the lookback window")
	var evs []contextEvent
	require.NoError(t, json.Unmarshal([]byte(got.Annotations["change_events_json"]), &evs))
	require.Len(t, evs, 1)
	require.Equal(t, "checkout-deploy", evs[0].Name)
	require.Equal(t, "start", evs[0].State)
	require.Equal(t, deployedAt, evs[0].Timestamp)
	require.Equal(t, map[string]string{"service": "checkout", "env": "prod", "version": "v2.4.1"}, evs[0].Labels)
	require.Len(t, evs[0].Links, 2)
	require.Equal(t, "https://ci.example/run/42", evs[0].Links[0].Href)
	require.Equal(t, "pipeline", evs[0].Links[0].Text)

	// The webhook gets the same alert, with the context decoded.
	require.Eventually(t, func() bool {
		rc.mtx.Lock()
		defer rc.mtx.Unlock()
		return len(rc.hooks) > 0
	}, 10*time.Second, 100*time.Millisecond)
	rc.mtx.Lock()
	hook := rc.hooks[0]
	rc.mtx.Unlock()
	require.Equal(t, "1", hook.Version)
	require.Equal(t, "acme", hook.Org)
	require.Equal(t, "firing", hook.Alerts[0].Status)
	require.Equal(t, "acme", hook.Alerts[0].Labels["org"])
	require.Len(t, hook.Alerts[0].ChangeEvents, 1)
	require.Equal(t, "checkout-deploy", hook.Alerts[0].ChangeEvents[0].Name)

	// Prometheus's /api/v1/alerts shows the same context on both alerts;
	// ALERTS is in the organization's storage.
	p := promClient(t, orgBase, acmeRead)
	fired, ok := findAlert(t, p, "CheckoutCanaryErrorRatio")
	require.True(t, ok)
	require.Equal(t, promv1.AlertStateFiring, fired.State)
	require.Contains(t, string(fired.Annotations["change_events"]), "checkout-deploy start at")
	require.NotContains(t, string(fired.Annotations["change_events"]), "billing")
	require.Eventually(t, func() bool {
		return len(instant(t, p, `ALERTS{alertname="CheckoutCanaryErrorRatio",alertstate="firing",org=""}`, time.Now())) == 1
	}, 10*time.Second, 200*time.Millisecond)
	require.Eventually(t, func() bool {
		return len(instant(t, p, `service:http_requests:rate1m{code="500"}`, time.Now())) == 1
	}, 10*time.Second, 200*time.Millisecond, "the recording rule")

	// The sustained alert is pending. Once its ALERTS_FOR_STATE is
	// written and it has been pending a while, restart the server.
	var pending promv1.Alert
	require.Eventually(t, func() bool {
		pending, ok = findAlert(t, p, "CheckoutCanaryErrorRatioSustained")
		return ok && len(instant(t, p, `ALERTS_FOR_STATE{alertname="CheckoutCanaryErrorRatioSustained"}`, time.Now())) == 1
	}, 15*time.Second, 200*time.Millisecond)
	require.Equal(t, promv1.AlertStatePending, pending.State)
	require.Contains(t, string(pending.Annotations["change_events"]), "checkout-deploy start at", "a pending alert shows its context too")
	activeAt := pending.ActiveAt
	time.Sleep(time.Until(activeAt.Add(15 * time.Second)))
	stopping := time.Now()
	srv.restart()
	ready := time.Now()
	t.Logf("pending since %s; restarted from %s to %s", activeAt.Format(time.RFC3339Nano), stopping.Format(time.RFC3339Nano), ready.Format(time.RFC3339Nano))

	// Without the restore, the alert would start pending again at the first
	// evaluation after the restart. Restored, it keeps its ~15s of pending
	// time (Prometheus moves ActiveAt forward by the downtime), so its
	// ActiveAt lies well before the restart ended.
	p = promClient(t, orgBase, acmeRead)
	var restored promv1.Alert
	var seen time.Time
	require.Eventually(t, func() bool {
		restored, ok = findAlert(t, p, "CheckoutCanaryErrorRatioSustained")
		seen = time.Now()
		return ok && restored.ActiveAt.Before(ready.Add(-5*time.Second))
	}, 20*time.Second, 200*time.Millisecond, "the `for` state was not restored; log:\n%s", srv.log)
	require.Equal(t, promv1.AlertStatePending, restored.State)
	// The shift is the time from the last evaluation before the stop to
	// the restore, which follows the second evaluation after the start.
	require.False(t, restored.ActiveAt.Before(activeAt), "restored ActiveAt %s is before the original %s", restored.ActiveAt, activeAt)
	require.True(t, restored.ActiveAt.Before(activeAt.Add(seen.Sub(stopping)+2*time.Second)), "restored ActiveAt %s moved by more than the downtime", restored.ActiveAt)
	require.Eventually(t, func() bool {
		v := instant(t, p, `ALERTS_FOR_STATE{alertname="CheckoutCanaryErrorRatioSustained"}`, time.Now())
		return len(v) == 1 && int64(v[0].Value) == restored.ActiveAt.Unix()
	}, 10*time.Second, 200*time.Millisecond, "ALERTS_FOR_STATE holds the restored ActiveAt")

	// The ruler API still has the group after the restart.
	code, body := getBody(t, orgBase+"/config/v1/rules/canary/checkout-canary", acmeRead)
	require.Equal(t, 200, code, "%s", body)
	require.Contains(t, body, "CheckoutCanaryErrorRatioSustained")
}

func getBody(t *testing.T, u, token string) (int, string) {
	req, err := http.NewRequest("GET", u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
