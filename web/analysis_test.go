package web_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/internal/testutil"
	"github.com/tidemark/tidemark/state"
)

// canaryTraffic is http_requests_total of one track of one scenario.
func canaryTraffic(rng *rand.Rand, scenario, track string, errorRate float64, from, to time.Time) []testutil.Series {
	return requestCounters(rng,
		labels.FromStrings("__name__", "http_requests_total", "scenario", scenario, "track", track, "code", "200"),
		labels.FromStrings("__name__", "http_requests_total", "scenario", scenario, "track", track, "code", "500"),
		errorRate, from, to)
}

// requestCounters are the counters of the requests that succeeded (ok) and
// failed (bad): every 15s about 100 requests, of which about errorRate fail.
func requestCounters(rng *rand.Rand, ok, bad labels.Labels, errorRate float64, from, to time.Time) []testutil.Series {
	var okS, badS []testutil.Sample
	var okN, badN float64
	for t := from; !t.After(to); t = t.Add(15 * time.Second) {
		n := 90 + rng.IntN(21)
		for range n {
			if rng.Float64() < errorRate {
				badN++
			} else {
				okN++
			}
		}
		okS = append(okS, testutil.Sample{T: t.UnixMilli(), V: okN})
		badS = append(badS, testutil.Sample{T: t.UnixMilli(), V: badN})
	}
	return []testutil.Series{{Labels: ok, Samples: okS}, {Labels: bad, Samples: badS}}
}

// errorRatio and requestRate are the PromQL of the two metrics compared.
func errorRatio(scenario, track string) string {
	return fmt.Sprintf(`sum(rate(http_requests_total{scenario=%q,track=%q,code=~"5.."}[1m])) / sum(rate(http_requests_total{scenario=%q,track=%q}[1m]))`, scenario, track, scenario, track)
}

func requestRate(scenario, track string) string {
	return fmt.Sprintf(`sum(rate(http_requests_total{scenario=%q,track=%q}[1m]))`, scenario, track)
}

// analysisRequest is a request of two metrics, the error ratio (critical)
// and the request rate, for a scenario.
func analysisRequest(window, scenario string) string {
	return fmt.Sprintf(`{"window": %s, "step": "15s", "confidence": 0.98, "thresholds": {"pass": 95, "marginal": 75},
	  "metrics": [
	    {"name": "error-ratio", "canary": %q, "baseline": %q, "direction": "increase", "critical": true},
	    {"name": "request-rate", "canary": %q, "baseline": %q, "direction": "decrease", "weight": 0.5}
	  ]}`, window, errorRatio(scenario, "canary"), errorRatio(scenario, "stable"), requestRate(scenario, "canary"), requestRate(scenario, "stable"))
}

type analysisReport struct {
	Verdict string
	Score   float64
	Reason  string
	Window  struct {
		Start, End, Step string
		Points           int
		Event            *struct {
			ID     string            `json:"id"`
			Name   string            `json:"event_name"`
			Labels map[string]string `json:"labels"`
			Open   bool              `json:"open"`
		}
	}
	Metrics []struct {
		Name            string
		Classification  string
		Reason          string
		Critical        bool
		CriticalFailure bool     `json:"critical_failure"`
		PValue          *float64 `json:"p_value"`
		Effect          *float64
		CanaryPoints    int `json:"canary_points"`
		BaselinePoints  int `json:"baseline_points"`
		Queries         struct{ Canary, Baseline string }
		Warnings        []string
	}
	Event *struct {
		Name   string            `json:"event_name"`
		ID     string            `json:"id"`
		Labels map[string]string `json:"labels"`
		Error  string            `json:"error"`
	}
}

// analysisStack is a test stack holding the scenarios' series and a stage
// event checkout-20 {service="checkout"} over 15 minutes of them.
type analysisStack struct {
	*testStack
	read, write      string
	start, end       time.Time // of the stage event
	dataFrom, dataTo time.Time
}

func newAnalysisStack(t testing.TB) *analysisStack {
	st := &analysisStack{testStack: newTestStack(t)}
	st.read, st.write = st.tokens["acme"][state.ScopeRead], st.tokens["acme"][state.ScopeWrite]
	now := time.Now().Truncate(time.Second)
	st.dataFrom, st.dataTo = now.Add(-30*time.Minute), now.Add(-5*time.Minute)
	st.start, st.end = now.Add(-22*time.Minute), now.Add(-7*time.Minute)

	rng := rand.New(rand.NewPCG(20261125, 5))
	var series []testutil.Series
	for _, s := range []struct {
		scenario, track string
		errorRate       float64
	}{
		{"healthy", "canary", 0.01}, {"healthy", "stable", 0.01},
		{"degraded", "canary", 0.06}, {"degraded", "stable", 0.01},
	} {
		series = append(series, canaryTraffic(rng, s.scenario, s.track, s.errorRate, st.dataFrom, st.dataTo)...)
	}
	require.NoError(t, testutil.RemoteWrite(t, st.url+"/api/v4/organizations/acme/prometheus/api/v1/write", st.write, false, series))

	req, err := http.NewRequest("POST", st.url+"/api/v4/organizations/acme/change_events", strings.NewReader(fmt.Sprintf(`[
	  {"event_name": "checkout-20", "event_state": "start", "timestamp": %d, "attributes": {"service": "checkout", "weight": 20}},
	  {"event_name": "checkout-20", "event_state": "stop", "timestamp": %d, "attributes": {"service": "checkout", "weight": 20}}]`,
		st.start.UnixMilli(), st.end.UnixMilli())))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+st.write)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	return st
}

func (st *analysisStack) analyze(t *testing.T, body string) (int, analysisReport, string) {
	t.Helper()
	code, resp := do(t, "POST", st.url+"/api/v4/organizations/acme/analysis", st.read, []byte(body), "application/json")
	var rep analysisReport
	if code == 200 {
		require.NoError(t, json.Unmarshal(resp, &rep), "%s", resp)
	}
	return code, rep, string(resp)
}

const stageWindow = `{"event_name": "checkout-20", "match": {"service": "checkout"}}`

func TestAnalysis(t *testing.T) {
	st := newAnalysisStack(t)

	t.Run("healthy canary passes", func(t *testing.T) {
		began := time.Now()
		code, rep, resp := st.analyze(t, analysisRequest(stageWindow, "healthy"))
		t.Logf("an analysis of 2 metrics over 15m took %s", time.Since(began))
		require.Equal(t, 200, code, resp)
		require.Equal(t, "pass", rep.Verdict, resp)
		require.Equal(t, 100.0, rep.Score)
		require.Equal(t, st.start.UTC().Format("2006-01-02T15:04:05.000Z"), rep.Window.Start)
		require.Equal(t, st.end.UTC().Format("2006-01-02T15:04:05.000Z"), rep.Window.End)
		require.Equal(t, "15s", rep.Window.Step)
		require.Equal(t, 61, rep.Window.Points)
		require.NotNil(t, rep.Window.Event)
		require.Equal(t, "checkout-20", rep.Window.Event.Name)
		require.False(t, rep.Window.Event.Open)
		require.Len(t, rep.Metrics, 2)
		for _, m := range rep.Metrics {
			require.Equal(t, "Pass", m.Classification, "%s: %s", m.Name, m.Reason)
			require.Equal(t, 61, m.CanaryPoints)
			require.Equal(t, 61, m.BaselinePoints)
			require.NotNil(t, m.PValue)
			require.NotNil(t, m.Effect)
			require.Empty(t, m.Warnings)
		}
		require.Equal(t, errorRatio("healthy", "canary"), rep.Metrics[0].Queries.Canary)
		require.Equal(t, errorRatio("healthy", "stable"), rep.Metrics[0].Queries.Baseline)

		// The verdict is remembered as the change event "analysis" over the window.
		require.NotNil(t, rep.Event)
		require.Empty(t, rep.Event.Error)
		require.Equal(t, map[string]string{"service": "checkout", "weight": "20", "window_event": "checkout-20", "outcome": "pass", "score": "100"}, rep.Event.Labels)
		evs := listEvents(t, st.testStack, "acme", client.ListQuery{Name: "analysis"})
		require.Len(t, evs, 2)
		require.Equal(t, "stop", evs[0].State)
		require.Equal(t, rep.Event.ID, evs[1].ID)
		require.Equal(t, evs[1].ID, evs[0].PairID)
		require.Equal(t, 900.0, *evs[0].Duration)
		require.Equal(t, "pass", evs[1].Metadata["verdict"])
		require.Len(t, evs[1].Metadata["metrics"], 2)

		// The same analysis again is stored once.
		code, _, resp = st.analyze(t, analysisRequest(stageWindow, "healthy"))
		require.Equal(t, 200, code, resp)
		require.Len(t, listEvents(t, st.testStack, "acme", client.ListQuery{Name: "analysis"}), 2)
		// It is a series like any event's.
		code, body := do(t, "GET", st.url+"/api/v1/query?query="+url.QueryEscape(`change_event_duration_seconds{event_name="analysis",outcome="pass"}`)+
			"&time="+fmt.Sprint(st.end.Unix()), st.read, nil, "")
		require.Equal(t, 200, code)
		require.Contains(t, string(body), `"900"`)
	})

	t.Run("degraded canary fails on its critical metric", func(t *testing.T) {
		code, rep, resp := st.analyze(t, analysisRequest(stageWindow, "degraded"))
		require.Equal(t, 200, code, resp)
		require.Equal(t, "fail", rep.Verdict, resp)
		require.Equal(t, 0.0, rep.Score)
		require.Contains(t, rep.Reason, `critical metric "error-ratio" is High`)
		require.Equal(t, "High", rep.Metrics[0].Classification, rep.Metrics[0].Reason)
		require.True(t, rep.Metrics[0].CriticalFailure)
		require.Less(t, *rep.Metrics[0].PValue, 0.001)
		require.Greater(t, *rep.Metrics[0].Effect, 3.0)
		require.Equal(t, "Pass", rep.Metrics[1].Classification, rep.Metrics[1].Reason)
		require.Equal(t, "fail", rep.Event.Labels["outcome"])
		require.Equal(t, "0", rep.Event.Labels["score"])
	})

	t.Run("explicit window", func(t *testing.T) {
		window := fmt.Sprintf(`{"start": %q, "end": %d}`, st.start.UTC().Format(time.RFC3339), st.end.Unix())
		code, rep, resp := st.analyze(t, strings.Replace(analysisRequest(window, "degraded"), `"step": "15s"`, `"step": 30`, 1))
		require.Equal(t, 200, code, resp)
		require.Equal(t, "fail", rep.Verdict)
		require.Nil(t, rep.Window.Event)
		require.Equal(t, "30s", rep.Window.Step)
		require.Equal(t, 31, rep.Metrics[0].CanaryPoints)
		require.Equal(t, map[string]string{"outcome": "fail", "score": "0"}, rep.Event.Labels)

		// Relative times, a default step, no record.
		code, rep, resp = st.analyze(t, `{"window": {"start": "now-40m", "end": "now-1m"}, "record": false,
		  "metrics": [{"canary": "sum(rate(http_requests_total{scenario=\"healthy\",track=\"canary\"}[1m]))", "baseline": "sum(rate(http_requests_total{scenario=\"healthy\",track=\"stable\"}[1m]))"}]}`)
		require.Equal(t, 200, code, resp)
		require.Equal(t, "pass", rep.Verdict, resp)
		require.Equal(t, "metric-1", rep.Metrics[0].Name)
		require.Equal(t, "15s", rep.Window.Step)
		require.Nil(t, rep.Event)
	})

	t.Run("no data", func(t *testing.T) {
		const missing = `{"window": ` + stageWindow + `, "metrics": [{"name": "latency", "canary": "sum(absent_metric{track=\"canary\"})", "baseline": "sum(absent_metric{track=\"stable\"})"%s}]}`
		code, rep, resp := st.analyze(t, fmt.Sprintf(missing, ""))
		require.Equal(t, 200, code, resp)
		require.Equal(t, "NoData", rep.Metrics[0].Classification)
		require.Nil(t, rep.Metrics[0].PValue)
		require.Nil(t, rep.Metrics[0].Effect)
		require.Equal(t, 0, rep.Metrics[0].CanaryPoints)
		require.Equal(t, "fail", rep.Verdict)
		require.Contains(t, rep.Reason, "1 of 1 metrics have no data")

		code, rep, resp = st.analyze(t, fmt.Sprintf(missing, `, "nodata": "pass"`))
		require.Equal(t, 200, code, resp)
		require.Equal(t, "Pass", rep.Metrics[0].Classification)
		require.Equal(t, "pass", rep.Verdict)
	})

	t.Run("a query of several series is pooled, with a warning", func(t *testing.T) {
		code, rep, resp := st.analyze(t, `{"window": `+stageWindow+`, "record": false, "metrics": [{"name": "by-code",
		  "canary": "sum by (code) (rate(http_requests_total{scenario=\"healthy\",track=\"canary\"}[1m]))",
		  "baseline": "sum by (code) (rate(http_requests_total{scenario=\"healthy\",track=\"stable\"}[1m]))"}]}`)
		require.Equal(t, 200, code, resp)
		require.Equal(t, 122, rep.Metrics[0].CanaryPoints)
		require.Len(t, rep.Metrics[0].Warnings, 2)
		require.Contains(t, rep.Metrics[0].Warnings[0], "the canary query returned 2 series")
	})

	t.Run("missing event", func(t *testing.T) {
		code, _, resp := st.analyze(t, analysisRequest(`{"event_name": "checkout-20", "match": {"service": "cart"}}`, "healthy"))
		require.Equal(t, 422, code, resp)
		require.JSONEq(t, `{"error": "no start of event \"checkout-20\" with labels {service=\"cart\"} is in the event log; the window names a change event that was started (event_name and labels in match), or explicit times (window.start, window.end)"}`, resp)
	})

	t.Run("bad requests name the field", func(t *testing.T) {
		q := `"sum(rate(http_requests_total[1m]))"`
		metric := `{"canary": ` + q + `, "baseline": ` + q + `}`
		for _, tc := range []struct {
			name, body, errHas string
		}{
			{"empty", ``, "the request body is empty"},
			{"not json", `{"window": `, "the body ends before the JSON object does"},
			{"no window", `{"metrics": [` + metric + `]}`, `field "window": is missing`},
			{"unknown field", `{"window": ` + stageWindow + `, "metric": []}`, `field "metric": unknown field; accepted: window, step`},
			{"wrong type", `{"window": ` + stageWindow + `, "metrics": [{"canary": 1}]}`, `field "metrics.canary": a JSON number is not accepted here; accepted: a JSON string`},
			{"no metrics", `{"window": ` + stageWindow + `}`, `field "metrics": is missing`},
			{"parse error", `{"window": ` + stageWindow + `, "metrics": [{"canary": "sum(rate(x[1m])", "baseline": "x"}]}`,
				`field "metrics[0].canary" value "sum(rate(x[1m])": 1:16: parse error: unclosed left parenthesis`},
			{"range vector", `{"window": ` + stageWindow + `, "metrics": [{"canary": "x", "baseline": "x[5m]"}]}`,
				`field "metrics[0].baseline" value "x[5m]": invalid expression type "range vector" for range query, must be Scalar or instant Vector`},
			{"no baseline", `{"window": ` + stageWindow + `, "metrics": [{"canary": "x"}]}`, `field "metrics[0].baseline": is required`},
			{"direction", `{"window": ` + stageWindow + `, "metrics": [{"canary": "x", "baseline": "x", "direction": "up"}]}`,
				`field "metrics[0].direction" value "up": is not a direction; accepted: increase, decrease or either`},
			{"nodata", `{"window": ` + stageWindow + `, "metrics": [{"canary": "x", "baseline": "x", "nodata": "skip"}]}`, `field "metrics[0].nodata" value "skip"`},
			{"weight", `{"window": ` + stageWindow + `, "metrics": [{"canary": "x", "baseline": "x", "weight": -1}]}`, `field "metrics[0].weight" value -1: is not a weight`},
			{"duplicate names", `{"window": ` + stageWindow + `, "metrics": [{"name": "a", "canary": "x", "baseline": "x"}, {"name": "a", "canary": "x", "baseline": "x"}]}`,
				`field "metrics[1].name" value "a": is the name of metrics[0] too`},
			{"confidence", `{"window": ` + stageWindow + `, "confidence": 98, "metrics": [` + metric + `]}`,
				`field "confidence" value 98: is out of range; accepted: a number strictly between 0 and 1`},
			{"thresholds", `{"window": ` + stageWindow + `, "thresholds": {"pass": 60}, "metrics": [` + metric + `]}`,
				`field "thresholds.marginal" value 75: is above the pass threshold 60`},
			{"event and times", `{"window": {"event_name": "x", "start": "now-1h"}, "metrics": [` + metric + `]}`,
				`field "window": names both an event and explicit times`},
			{"match without name", `{"window": {"match": {"service": "x"}}, "metrics": [` + metric + `]}`, `field "window.event_name": is required with window.match`},
			{"bad time", `{"window": {"start": "yesterday"}, "metrics": [` + metric + `]}`, `field "window.start" value "yesterday": is not a time`},
			{"end before start", `{"window": {"start": "now-10m", "end": "now-20m"}, "metrics": [` + metric + `]}`, `field "window.end" value`},
			{"window too long", `{"window": {"start": "now-48h"}, "metrics": [` + metric + `]}`,
				`field "window.start" value`},
			{"step", `{"window": ` + stageWindow + `, "step": "fast", "metrics": [` + metric + `]}`, `field "step" value "fast": is not a duration`},
			{"too many points", `{"window": ` + stageWindow + `, "step": "50ms", "metrics": [` + metric + `]}`,
				`field "step" value "50ms": gives 18001 points over the window of 15m; accepted: a step of at least 1s for this window (at most 11000 points per query)`},
			{"reserved label", `{"window": ` + stageWindow + `, "labels": {"outcome": "x"}, "metrics": [` + metric + `]}`, `field "labels.outcome" value "x": is set by the judge`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, resp := st.analyze(t, tc.body)
				require.Equal(t, 400, code, resp)
				var e struct{ Error string }
				require.NoError(t, json.Unmarshal([]byte(resp), &e), resp)
				require.Contains(t, e.Error, tc.errHas)
			})
		}
	})

	t.Run("a query that fails at evaluation", func(t *testing.T) {
		code, _, resp := st.analyze(t, `{"window": `+stageWindow+`, "metrics": [{"canary": "http_requests_total{scenario=\"healthy\"} + on(track) http_requests_total{scenario=\"healthy\"}", "baseline": "vector(1)"}]}`)
		require.Equal(t, 422, code, resp)
		require.Contains(t, resp, `field \"metrics[0].canary\" value`)
		require.Contains(t, resp, "the query failed")
	})

	t.Run("scope and organization", func(t *testing.T) {
		code, resp := do(t, "POST", st.url+"/api/v4/organizations/acme/analysis", "", []byte(analysisRequest(stageWindow, "healthy")), "application/json")
		require.Equal(t, 401, code, "%s", resp)
		code, resp = do(t, "POST", st.url+"/api/v4/organizations/acme/analysis", st.tokens["globex"][state.ScopeRead], []byte(analysisRequest(stageWindow, "healthy")), "application/json")
		require.Equal(t, 403, code, "%s", resp)
		// globex's own analysis sees none of acme's events or series.
		code, resp = do(t, "POST", st.url+"/api/v4/organizations/globex/analysis", st.tokens["globex"][state.ScopeRead], []byte(analysisRequest(stageWindow, "healthy")), "application/json")
		require.Equal(t, 422, code, "%s", resp)
	})
}

// BenchmarkAnalysis measures one analysis of two metrics (4 range queries
// of 61 points) over a 15 minute stage event, through the HTTP handler.
func BenchmarkAnalysis(b *testing.B) {
	st := newAnalysisStack(b)
	h := st.handler
	for _, record := range []bool{false, true} {
		body := []byte(strings.Replace(analysisRequest(stageWindow, "degraded"), `"step"`, fmt.Sprintf(`"record": %t, "step"`, record), 1))
		b.Run(fmt.Sprintf("record=%t", record), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				serve(b, h, "POST", "/api/v4/organizations/acme/analysis", st.read, body, nil)
			}
		})
	}
}

// TestAnalysisGET is the form Argo Rollouts' web provider calls: the verdict
// at $.verdict, 200 whatever it is.
func TestAnalysisGET(t *testing.T) {
	st := newAnalysisStack(t)
	get := func(q url.Values) (int, analysisReport, string) {
		code, resp := do(t, "GET", st.url+"/api/v4/organizations/acme/analysis?"+q.Encode(), st.read, nil, "")
		var rep analysisReport
		if code == 200 {
			require.NoError(t, json.Unmarshal(resp, &rep), "%s", resp)
		}
		return code, rep, string(resp)
	}
	params := func(scenario string) url.Values {
		return url.Values{
			"event_name": {"checkout-20"}, "match.service": {"checkout"},
			"name": {"error-ratio"}, "canary": {errorRatio(scenario, "canary")}, "baseline": {errorRatio(scenario, "stable")},
			"direction": {"increase"}, "critical": {"true"},
		}
	}
	code, rep, resp := get(params("healthy"))
	require.Equal(t, 200, code, resp)
	require.Equal(t, "pass", rep.Verdict)
	require.Equal(t, "error-ratio", rep.Metrics[0].Name)
	require.True(t, rep.Metrics[0].Critical)

	code, rep, resp = get(params("degraded"))
	require.Equal(t, 200, code, resp)
	require.Equal(t, "fail", rep.Verdict)
	require.Equal(t, "High", rep.Metrics[0].Classification)

	// A whole request in one parameter.
	code, rep, resp = get(url.Values{"request": {analysisRequest(stageWindow, "degraded")}})
	require.Equal(t, 200, code, resp)
	require.Equal(t, "fail", rep.Verdict)
	require.Len(t, rep.Metrics, 2)

	// Explicit, relative times.
	q := params("healthy")
	delete(q, "event_name")
	delete(q, "match.service")
	q.Set("start", "now-25m")
	q.Set("end", "now-5m")
	q.Set("step", "30s")
	code, rep, resp = get(q)
	require.Equal(t, 200, code, resp)
	require.Equal(t, "pass", rep.Verdict)
	require.Equal(t, "30s", rep.Window.Step)

	for _, tc := range []struct {
		mutate func(url.Values)
		errHas string
	}{
		{func(q url.Values) { q.Set("direction", "up") }, `parameter "direction" value "up": is not a direction`},
		{func(q url.Values) { q.Set("critical", "yes please") }, `parameter "critical" value "yes please": not a boolean; accepted: true or false`},
		{func(q url.Values) { q.Set("canary", "sum(") }, `parameter "canary" value "sum(": 1:5: parse error`},
		{func(q url.Values) { q.Set("metric", "x") }, `parameter "metric": unknown key; accepted: request, event_name`},
		{func(q url.Values) { q.Add("canary", "x") }, `parameter "canary": given 2 times; accepted: once`},
		{func(q url.Values) { q.Set("request", "{}") }, `parameter "request": cannot be combined with`},
		{func(q url.Values) { q.Set("confidence", "0.98x") }, `parameter "confidence" value "0.98x": not a number`},
		{func(q url.Values) { q.Set("start", "now-1h") }, `parameter "window": names both an event and explicit times`},
	} {
		q := params("healthy")
		tc.mutate(q)
		code, _, resp := get(q)
		require.Equal(t, 400, code, resp)
		require.Contains(t, resp, strings.ReplaceAll(tc.errHas, `"`, `\"`))
	}
	code, _, resp = get(url.Values{"request": {`{"window": {}}`}})
	require.Equal(t, 400, code, resp)
	require.Contains(t, resp, `parameter \"request\": field \"window\": is missing`)
}

// TestAnalysisFlagger is the Flagger webhook gate: 200 on pass, 412 with
// the report otherwise; the window defaults to the event that Tidemark's
// Flagger event webhook keeps for the canary.
func TestAnalysisFlagger(t *testing.T) {
	st := newAnalysisStack(t)
	// Flagger's event webhook opened the canary's event 22 minutes ago.
	code, hookResp := do(t, "POST", st.url+"/api/v4/organizations/acme/hooks/flagger", st.write, []byte(fmt.Sprintf(
		`{"name":"checkout","namespace":"prod","phase":"Progressing","metadata":{"eventMessage":"New revision detected","eventType":"Normal","timestamp":"%d"}}`,
		st.start.UnixMilli())), "application/json")
	require.Equal(t, 200, code, "%s", hookResp)

	hook := st.url + "/api/v4/organizations/acme/analysis/flagger"
	post := func(metadata map[string]string) (int, analysisReport, string) {
		b, err := json.Marshal(map[string]any{"name": "checkout", "namespace": "prod", "phase": "Progressing", "checksum": "abc", "metadata": metadata})
		require.NoError(t, err)
		code, resp := do(t, "POST", hook, st.read, b, "application/json")
		var rep analysisReport
		if code == 200 || code == 412 {
			require.NoError(t, json.Unmarshal(resp, &rep), "%s", resp)
		}
		return code, rep, string(resp)
	}
	flat := func(scenario string) map[string]string {
		return map[string]string{"name": "error-ratio", "canary": errorRatio(scenario, "canary"), "baseline": errorRatio(scenario, "stable"), "direction": "increase", "critical": "true"}
	}

	code, rep, resp := post(flat("healthy"))
	require.Equal(t, 200, code, resp)
	require.Equal(t, "pass", rep.Verdict)
	require.Equal(t, "checkout", rep.Window.Event.Name)
	require.True(t, rep.Window.Event.Open)
	require.Equal(t, map[string]string{"canary": "checkout", "namespace": "prod"}, rep.Window.Event.Labels)

	code, rep, resp = post(flat("degraded"))
	require.Equal(t, 412, code, resp)
	require.Equal(t, "fail", rep.Verdict)

	// The request as JSON in metadata.request, with an explicit window.
	code, rep, resp = post(map[string]string{"request": analysisRequest(stageWindow, "degraded")})
	require.Equal(t, 412, code, resp)
	require.Equal(t, "fail", rep.Verdict)
	require.Equal(t, "checkout-20", rep.Window.Event.Name)

	// A marginal canary: 412 unless allowed. The request rate fails (not
	// critical) against a pass threshold above the score.
	marginal := map[string]string{"name": "error-rate", "canary": requestRate("degraded", "canary") + " * 0.5", "baseline": requestRate("degraded", "stable"),
		"direction": "decrease", "pass": "100", "marginal": "0"}
	code, rep, resp = post(marginal)
	require.Equal(t, 412, code, resp)
	require.Equal(t, "marginal", rep.Verdict)
	require.Equal(t, "Low", rep.Metrics[0].Classification)
	marginal["allow_marginal"] = "true"
	code, rep, resp = post(marginal)
	require.Equal(t, 200, code, resp)
	require.Equal(t, "marginal", rep.Verdict)

	// Bad metadata is a 400 naming the key.
	bad := flat("healthy")
	bad["direction"] = "sideways"
	code, _, resp = post(bad)
	require.Equal(t, 400, code, resp)
	require.Contains(t, resp, `metadata key \"direction\" value \"sideways\"`)
	bad = flat("healthy")
	bad["allow_marginal"] = "maybe"
	code, _, resp = post(bad)
	require.Equal(t, 400, code, resp)
	require.Contains(t, resp, `metadata key \"allow_marginal\" value \"maybe\"`)
	code, hookResp = do(t, "POST", hook, st.read, []byte(`{"name": 1}`), "application/json")
	require.Equal(t, 400, code, "%s", hookResp)
	require.Contains(t, string(hookResp), "flagger webhook")
}

// TestAnalysisDocExamples sends the Argo Rollouts examples of
// docs/canary-judge.md as Argo Rollouts' web provider would: the GET URL
// and the jsonBody, with the arguments filled in, then applies jsonPath
// {$.verdict} and the conditions result == "pass" / "fail".
func TestAnalysisDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/canary-judge.md")
	require.NoError(t, err)
	text := string(doc)
	require.Equal(t, 2, strings.Count(text, `jsonPath: "{$.verdict}"`))
	require.Equal(t, 2, strings.Count(text, `successCondition: result == "pass"`))
	require.Equal(t, 2, strings.Count(text, `failureCondition: result == "fail"`))

	const getPrefix = `url: "http://tidemark.tidemark.svc:9470/api/v4/organizations/default/analysis?`
	i := strings.Index(text, getPrefix)
	require.GreaterOrEqual(t, i, 0, "the GET example")
	getURL := text[i+len(`url: "`):]
	getURL = getURL[:strings.IndexByte(getURL, '"')]
	i = strings.Index(text, "jsonBody: {")
	require.GreaterOrEqual(t, i, 0, "the jsonBody example")
	jsonBody := jsonObjectAt(t, text, i+len("jsonBody: "))
	require.True(t, json.Valid([]byte(jsonBody)), "jsonBody is not JSON: %s", jsonBody)

	// The sample app's counters for the stable pods and a healthy and a
	// degraded canary, and the stage event its notifications write.
	st := &analysisStack{testStack: newTestStack(t)}
	st.read, st.write = st.tokens["acme"][state.ScopeRead], st.tokens["acme"][state.ScopeWrite]
	now := time.Now().Truncate(time.Second)
	rng := rand.New(rand.NewPCG(2026, 20))
	const stable, healthy, degraded = "7f9c8d6b5", "5d6c7b8a9", "8b7a6c5d4"
	var series []testutil.Series
	for _, pods := range []struct {
		hash      string
		errorRate float64
	}{{stable, 0.01}, {healthy, 0.01}, {degraded, 0.08}} {
		counter := func(success string) labels.Labels {
			return labels.FromStrings("__name__", "sample_app_requests_count", "success", success, "rollouts_pod_template_hash", pods.hash, "namespace", "default")
		}
		series = append(series, requestCounters(rng, counter("true"), counter("false"), pods.errorRate, now.Add(-20*time.Minute), now)...)
	}
	require.NoError(t, testutil.RemoteWrite(t, st.url+"/api/v4/organizations/acme/prometheus/api/v1/write", st.write, false, series))
	code, resp := do(t, "POST", st.url+"/api/v4/organizations/acme/change_events", st.write, []byte(fmt.Sprintf(
		`{"event_name": "sample-app-20", "timestamp": %d, "attributes": {"rollout": "sample-app", "namespace": "default", "weight": "20"}}`,
		now.Add(-15*time.Minute).UnixMilli())), "application/json")
	require.Equal(t, 200, code, "%s", resp)

	fill := func(s, canaryHash string) string {
		return strings.NewReplacer(
			"http://tidemark.tidemark.svc:9470", st.url, "/organizations/default/", "/organizations/acme/",
			"{{args.rollout}}", "sample-app", "{{args.namespace}}", "default", "{{args.weight}}", "20",
			"{{args.canary-hash}}", canaryHash, "{{args.stable-hash}}", stable,
		).Replace(s)
	}
	verdict := func(code int, resp []byte) string {
		require.Equal(t, 200, code, "%s", resp)
		var rep struct{ Verdict string }
		require.NoError(t, json.Unmarshal(resp, &rep))
		return rep.Verdict
	}
	for canaryHash, want := range map[string]string{healthy: "pass", degraded: "fail"} {
		code, resp := do(t, "GET", fill(getURL, canaryHash), st.read, nil, "")
		require.Equal(t, want, verdict(code, resp), "GET: %s", resp)
		code, resp = do(t, "POST", fill("http://tidemark.tidemark.svc:9470/api/v4/organizations/default/analysis", ""), st.read, []byte(fill(jsonBody, canaryHash)), "application/json")
		require.Equal(t, want, verdict(code, resp), "POST: %s", resp)
	}
}

// jsonObjectAt returns the JSON object that starts at s[i].
func jsonObjectAt(t *testing.T, s string, i int) string {
	require.Equal(t, byte('{'), s[i])
	depth, inString := 0, false
	for j := i; j < len(s); j++ {
		switch c := s[j]; {
		case inString && c == '\\':
			j++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return s[i : j+1]
			}
		}
	}
	t.Fatalf("no end of the JSON object at %d", i)
	return ""
}
