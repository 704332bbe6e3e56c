package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// flaggerProvider queries as Flagger's prometheus metric provider
// (pkg/metrics/providers/prometheus.go) does: a GET of
// <address>/api/v1/query with the query's whitespace collapsed and no time
// parameter, a bearer token (Secret key "token") or basic auth (keys
// "username" and "password"), and the value of the last result, NaN or no
// result being "no values found".
type flaggerProvider struct {
	address            string
	token              string
	username, password string
}

func (p flaggerProvider) RunQuery(query string) (float64, error) {
	query = url.QueryEscape(regexp.MustCompile(`\s+`).ReplaceAllString(query, " "))
	base, err := url.Parse(p.address)
	if err != nil {
		return 0, err
	}
	u, err := url.Parse(fmt.Sprintf("./api/v1/query?query=%s", query))
	if err != nil {
		return 0, err
	}
	u.Path = path.Join(base.Path, u.Path)
	u = base.ResolveReference(u)
	req, err := http.NewRequest("GET", u.String(), nil)
	if err != nil {
		return 0, err
	}
	if p.token != "" {
		req.Header.Add("Authorization", "Bearer "+p.token)
	} else if p.username != "" && p.password != "" {
		req.SetBasicAuth(p.username, p.password)
	}
	ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
	defer cancel()
	r, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("request failed: %w", err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, err
	}
	if 400 <= r.StatusCode {
		return 0, fmt.Errorf("error response: %s", string(b))
	}
	var result struct {
		Data struct {
			Result []struct {
				Metric struct {
					Name string `json:"name"`
				}
				Value []any `json:"value"`
			}
		}
	}
	if err := json.Unmarshal(b, &result); err != nil {
		return 0, fmt.Errorf("error unmarshaling result: %w, '%s'", err, string(b))
	}
	var value *float64
	for _, v := range result.Data.Result {
		if s, ok := v.Value[1].(string); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return 0, err
			}
			value = &f
		}
	}
	if value == nil || math.IsNaN(*value) {
		return 0, errors.New("no values found")
	}
	return *value, nil
}

// IsOnline is Flagger's health check of a Prometheus provider.
func (p flaggerProvider) IsOnline() (bool, error) {
	v, err := p.RunQuery("vector(1)")
	if err != nil {
		return false, fmt.Errorf("running query failed: %w", err)
	}
	if v != 1 {
		return false, fmt.Errorf("value is not 1 for query: vector(1)")
	}
	return true, nil
}

// renderFlaggerQuery renders a MetricTemplate's query as Flagger does: a Go
// text/template whose variables are functions.
func renderFlaggerQuery(t *testing.T, query string, vars map[string]string) string {
	t.Helper()
	funcs := template.FuncMap{}
	for _, k := range []string{"name", "namespace", "target", "service", "ingress", "interval"} {
		v := vars[k]
		funcs[k] = func() string { return v }
	}
	tmpl, err := template.New("tmpl").Funcs(funcs).Parse(query)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, tmpl.Execute(&b, nil))
	return b.String()
}

// TestFlaggerPrometheusProvider: Flagger's health check and the example
// MetricTemplate's query, sent as Flagger sends them, with the token of the
// example Secret as a bearer token and as a basic-auth password.
func TestFlaggerPrometheusProvider(t *testing.T) {
	srv := startServer(t)
	mt := example[*unstructured.Unstructured](t, "flagger/canary.yaml", "tidemark-success-percentage")
	address, _, _ := unstructured.NestedString(mt.Object, "spec", "provider", "address")
	require.Equal(t, inCluster+"/api/v4/organizations/"+org+"/prometheus", address)
	secretName, _, _ := unstructured.NestedString(mt.Object, "spec", "provider", "secretRef", "name")
	sec := example[*corev1.Secret](t, "flagger/canary.yaml", secretName)
	require.Equal(t, "replace-with-a-read-token", sec.StringData["token"])

	providers := map[string]flaggerProvider{
		"bearer": {address: srv.local(address), token: readToken},
		"basic":  {address: srv.local(address), username: "flagger", password: readToken},
	}
	for name, p := range providers {
		ok, err := p.IsOnline()
		require.NoError(t, err, name)
		require.True(t, ok, name)
	}
	_, err := flaggerProvider{address: srv.local(address), token: "wrong-token-0123456789"}.IsOnline()
	require.ErrorContains(t, err, "error response")

	// The canary's pods (deployment sample-app) at 99.5%, the primary's at
	// 90%: the query sees the canary's only.
	now := time.Now()
	srv.remoteWrite(t, requests(map[string]string{"namespace": appNamespace, "pod": "sample-app-7d9f8b6c5-x2x4z"}, 20, 0.995, now))
	srv.remoteWrite(t, requests(map[string]string{"namespace": appNamespace, "pod": "sample-app-primary-6c5d7f8b9-q7w8e"}, 20, 0.90, now))
	query, _, _ := unstructured.NestedString(mt.Object, "spec", "query")
	canary := example[*unstructured.Unstructured](t, "flagger/canary.yaml", "sample-app")
	metrics, _, _ := unstructured.NestedSlice(canary.Object, "spec", "analysis", "metrics")
	require.Len(t, metrics, 1)
	interval, _, _ := unstructured.NestedString(metrics[0].(map[string]any), "interval")
	min, _, _ := unstructured.NestedFloat64(metrics[0].(map[string]any), "thresholdRange", "min")
	rendered := renderFlaggerQuery(t, query, map[string]string{"name": "sample-app", "namespace": appNamespace, "target": "sample-app", "interval": interval})
	for name, p := range providers {
		v, err := p.RunQuery(rendered)
		require.NoError(t, err, "%s: %s", name, rendered)
		require.InDelta(t, 99.5, v, 0.01, name)
		require.GreaterOrEqual(t, v, min, "the healthy canary passes the Canary's thresholdRange")
	}
	// No data (another target): Flagger's "no values found".
	_, err = providers["bearer"].RunQuery(renderFlaggerQuery(t, query, map[string]string{"namespace": appNamespace, "target": "other-app", "interval": interval}))
	require.ErrorContains(t, err, "no values found")
}

// flaggerEventPayload is Flagger's CanaryWebhookPayload as its event webhook
// sends it (pkg/controller/webhook.go, CallEventWebhook).
type flaggerEventPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// postFlaggerEvent posts as Flagger's callWebhook does: retryablehttp, JSON,
// no credentials but the URL's, any status above 202 an error.
func postFlaggerEvent(hook string, p flaggerEventPayload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	client := retryablehttp.NewClient()
	client.RetryMax = 0
	client.Logger = nil
	client.HTTPClient.Timeout = 10 * time.Second
	req, err := retryablehttp.NewRequest("POST", hook, bytes.NewBuffer(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	r, err := client.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode > 202 {
		return errors.New(string(b))
	}
	return nil
}

// TestFlaggerEventWebhook: Flagger's event webhook payloads, posted to the
// example Canary's event webhook URL, become the change event of a canary
// run.
func TestFlaggerEventWebhook(t *testing.T) {
	srv := startServer(t)
	canary := example[*unstructured.Unstructured](t, "flagger/canary.yaml", "sample-app")
	hooks, _, _ := unstructured.NestedSlice(canary.Object, "spec", "analysis", "webhooks")
	require.Len(t, hooks, 1)
	hook := hooks[0].(map[string]any)
	require.Equal(t, "event", hook["type"])
	u, err := url.Parse(hook["url"].(string))
	require.NoError(t, err)
	pw, _ := u.User.Password()
	require.Equal(t, "replace-with-a-write-token", pw, "the write token is the URL's password")
	require.Equal(t, "/api/v4/organizations/"+org+"/hooks/flagger", u.Path)
	u.User = url.UserPassword(u.User.Username(), writeToken)
	u.Host = strings.TrimPrefix(srv.url, "http://")
	hookURL := u.String()

	send := func(phase, message string) error {
		return postFlaggerEvent(hookURL, flaggerEventPayload{
			Name: "sample-app", Namespace: appNamespace, Phase: phase, Checksum: "6d8b7c9f5",
			Metadata: map[string]string{"eventMessage": message, "eventType": "Normal", "timestamp": strconv.FormatInt(time.Now().UnixMilli(), 10)},
		})
	}
	runEvents := func() []loggedEvent { return srv.events(t, `{event_name="sample-app", canary="sample-app"}`) }

	require.NoError(t, send("Initialized", "Initialization done! sample-app.sample"), "a phase that neither starts nor ends a run is answered 200")
	require.Empty(t, runEvents())
	require.NoError(t, send("Progressing", "New revision detected! Scaling up sample-app.sample"))
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, send("Progressing", "Advance sample-app.sample canary iteration 1/5"))
	evs := runEvents()
	require.Equal(t, []string{"sample-app"}, openEvents(evs))
	start := latest(evs, "sample-app", "start")
	require.Equal(t, map[string]string{"canary": "sample-app", "namespace": appNamespace}, start.Labels)
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, send("Succeeded", "Promotion completed! Scaling down sample-app.sample"))
	evs = runEvents()
	require.Empty(t, openEvents(evs))
	stop := latest(evs, "sample-app", "stop")
	require.NotNil(t, stop)
	require.Equal(t, "succeeded", strings.ToLower(stop.Labels["phase"]), "%+v", stop)
	require.NotEmpty(t, stop.Labels["outcome"], "%+v", stop)
	require.NotNil(t, stop.Duration, "the stop paired with the run's start")

	// A failed run.
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, send("Progressing", "New revision detected! Scaling up sample-app.sample"))
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, send("Failed", "Canary failed! Scaling down sample-app.sample"))
	stop = latest(runEvents(), "sample-app", "stop")
	require.Equal(t, "failed", strings.ToLower(stop.Labels["phase"]), "%+v", stop)

	// Without the URL's credentials: refused.
	u.User = nil
	require.Error(t, postFlaggerEvent(u.String(), flaggerEventPayload{Name: "sample-app", Namespace: appNamespace, Phase: "Progressing"}))
}
