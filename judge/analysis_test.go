package judge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

const fullRequest = `{
  "window": {"event_name": "checkout-20", "match": {"service": "checkout"}},
  "step": "30s",
  "confidence": 0.95,
  "thresholds": {"pass": 90, "marginal": 50},
  "labels": {"team": "payments"},
  "record": false,
  "metrics": [
    {"name": "error-ratio", "canary": "sum(rate(errors{track=\"canary\"}[1m]))", "baseline": "sum(rate(errors{track=\"stable\"}[1m]))",
     "direction": "increase", "critical": true, "weight": 2, "nodata": "pass", "effect_measure": "cles",
     "allowed_increase": 0.6, "allowed_decrease": 0.4, "critical_increase": 0.8, "critical_decrease": 0.2, "tolerance": 0.5},
    {"canary": "vector(1)", "baseline": "scalar(vector(1))"}
  ]
}`

func TestParseRequest(t *testing.T) {
	p, err := ParseRequest([]byte(fullRequest))
	require.NoError(t, err)
	require.Equal(t, WindowPlan{EventName: "checkout-20", Match: map[string]string{"service": "checkout"}}, p.Window)
	require.Equal(t, 30*time.Second, p.Step)
	require.Equal(t, 0.95, p.Confidence)
	require.Equal(t, Thresholds{Pass: 90, Marginal: 50}, p.Thresholds)
	require.Equal(t, map[string]string{"team": "payments"}, p.Labels)
	require.False(t, p.Record)
	require.Equal(t, []MetricPlan{
		{Name: "error-ratio", Canary: `sum(rate(errors{track="canary"}[1m]))`, Baseline: `sum(rate(errors{track="stable"}[1m]))`, Weight: 2, Options: Options{
			Direction: DirectionIncrease, Confidence: 0.95, Tolerance: 0.5, Measure: EffectCLES,
			AllowedIncrease: 0.6, AllowedDecrease: 0.4, CriticalIncrease: 0.8, CriticalDecrease: 0.2,
			Critical: true, Missing: MissingPass,
		}},
		{Name: "metric-2", Canary: "vector(1)", Baseline: "scalar(vector(1))", Weight: 1, Options: Options{Confidence: 0.95}},
	}, p.Metrics)

	// The defaults.
	p, err = ParseRequest([]byte(`{"window": {"start": "now-15m"}, "metrics": [{"canary": "up", "baseline": "up"}]}`))
	require.NoError(t, err)
	require.Equal(t, time.Duration(0), p.Step)
	require.Equal(t, DefaultConfidence, p.Confidence)
	require.Equal(t, Thresholds{Pass: 95, Marginal: 75}, p.Thresholds)
	require.True(t, p.Record)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	require.Equal(t, now.Add(-15*time.Minute), p.Window.Start.At(now))
	require.Equal(t, now, p.Window.End.At(now), "the end defaults to now")
}

// TestParseForm: the flat keys of one metric give the plan the JSON gives.
func TestParseForm(t *testing.T) {
	form := url.Values{
		"event_name": {"checkout-20"}, "match.service": {"checkout"}, "step": {"30s"}, "confidence": {"0.95"},
		"pass": {"90"}, "marginal": {"50"}, "labels.team": {"payments"}, "record": {"false"},
		"name": {"error-ratio"}, "canary": {`sum(rate(errors{track="canary"}[1m]))`}, "baseline": {`sum(rate(errors{track="stable"}[1m]))`},
		"direction": {"increase"}, "critical": {"true"}, "weight": {"2"}, "nodata": {"pass"}, "effect_measure": {"cles"},
		"allowed_increase": {"0.6"}, "allowed_decrease": {"0.4"}, "critical_increase": {"0.8"}, "critical_decrease": {"0.2"}, "tolerance": {"0.5"},
	}
	flat, err := ParseForm(form, "parameter")
	require.NoError(t, err)
	full, err := ParseRequest([]byte(fullRequest))
	require.NoError(t, err)
	full.Metrics = full.Metrics[:1]
	require.Equal(t, full.Window, flat.Window)
	require.Equal(t, full.Step, flat.Step)
	require.Equal(t, full.Confidence, flat.Confidence)
	require.Equal(t, full.Thresholds, flat.Thresholds)
	require.Equal(t, full.Labels, flat.Labels)
	require.Equal(t, full.Record, flat.Record)
	require.Equal(t, full.Metrics, flat.Metrics)

	p, err := ParseForm(url.Values{"canary": {"up"}, "baseline": {"up"}, "start": {"1764064800"}, "end": {"1764065700000"}}, "parameter")
	require.NoError(t, err)
	require.Equal(t, "metric-1", p.Metrics[0].Name)
	require.Equal(t, time.Unix(1764064800, 0), p.Window.Start.At(time.Now()))
	require.Equal(t, time.Unix(1764065700, 0), p.Window.End.At(time.Now()))

	p, err = ParseForm(url.Values{"request": {fullRequest}}, "metadata key")
	require.NoError(t, err)
	require.Len(t, p.Metrics, 2)
}

func TestRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		form url.Values // nil: body
		body string
		err  string
	}{
		{name: "trailing data", body: `{"window": {"start": "now-1h"}, "metrics": [{"canary": "up", "baseline": "up"}]} {}`,
			err: "unexpected data after the JSON object; accepted: one analysis request as a JSON object"},
		{name: "not an object", body: `[]`, err: "the body is a JSON array; accepted: an analysis request as a JSON object"},
		{name: "syntax", body: `{"window" {}}`, err: "the body is not valid JSON: invalid character '{' after object key (at byte 11)"},
		{name: "match of event_name", body: `{"window": {"event_name": "a", "match": {"event_name": "b"}}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "window.match.event_name" value "b": is not a label to match`},
		{name: "match label name", body: `{"window": {"event_name": "a", "match": {"a-b": "c"}}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "window.match.a-b" value "c": is not a label name; accepted: label names matching [a-zA-Z_][a-zA-Z0-9_]*`},
		{name: "match label name with a colon", body: `{"window": {"event_name": "a", "match": {"a:b": "c"}}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "window.match.a:b" value "c": is not a label name`},
		{name: "match label name not ASCII", body: `{"window": {"event_name": "a", "match": {"é": "c"}}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "window.match.é" value "c": is not a label name`},
		{name: "match label name with a digit first", body: `{"window": {"event_name": "a", "match": {"1a": "c"}}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "window.match.1a" value "c": is not a label name`},
		{name: "empty match label name", body: `{"window": {"event_name": "a", "match": {"": "c"}}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "window.match." value "c": is not a label name`},
		{name: "end alone", body: `{"window": {"end": "now"}, "metrics": [{"canary": "up", "baseline": "up"}]}`, err: `field "window.start": is required with window.end`},
		{name: "negative epoch", body: `{"window": {"start": -5}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "window.start" value -5: is not a time: not a finite, non-negative number`},
		{name: "bad relative", body: `{"window": {"start": "now-soon"}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "window.start" value "now-soon": is not a time: "soon" is not a duration`},
		{name: "step zero", body: `{"window": {"start": "now-1h"}, "step": 0, "metrics": [{"canary": "up", "baseline": "up"}]}`, err: `field "step" value 0: is shorter than 1ms`},
		{name: "threshold range", body: `{"window": {"start": "now-1h"}, "thresholds": {"pass": 101}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "thresholds.pass" value 101: is out of range; accepted: a score from 0 to 100`},
		{name: "effect size", body: `{"window": {"start": "now-1h"}, "metrics": [{"canary": "up", "baseline": "up", "allowed_increase": -1}]}`,
			err: `field "metrics[0].allowed_increase" value -1: is not accepted`},
		{name: "measure", body: `{"window": {"start": "now-1h"}, "metrics": [{"canary": "up", "baseline": "up", "effect_measure": "median"}]}`,
			err: `field "metrics[0].effect_measure" value "median": is not an effect size measure; accepted: meanRatio (the default) or cles`},
		{name: "string query", body: `{"window": {"start": "now-1h"}, "metrics": [{"canary": "\"up\"", "baseline": "up"}]}`,
			err: `field "metrics[0].canary" value "\"up\"": invalid expression type "string" for range query`},
		{name: "label name", body: `{"window": {"start": "now-1h"}, "labels": {"__x": "y"}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "labels.__x" value "y": is not a label name`},
		{name: "label name with a colon", body: `{"window": {"start": "now-1h"}, "labels": {"team:x": "y"}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "labels.team:x" value "y": is not a label name`},
		{name: "label name not ASCII", body: `{"window": {"start": "now-1h"}, "labels": {"équipe": "y"}, "metrics": [{"canary": "up", "baseline": "up"}]}`,
			err: `field "labels.équipe" value "y": is not a label name`},
		{name: "too many metrics", body: `{"window": {"start": "now-1h"}, "metrics": [` + strings.Repeat(`{"canary": "up", "baseline": "up"},`, MaxMetrics) + `{"canary": "up", "baseline": "up"}]}`,
			err: `field "metrics": has 51 metrics; accepted: at most 50 metrics`},

		{name: "form: no window", form: url.Values{"canary": {"up"}, "baseline": {"up"}}, err: `parameter "window": is missing; accepted: an event (event_name, and match with label values) or explicit times`},
		{name: "form: no metric", form: url.Values{"start": {"now-1h"}}, err: `parameter "metrics": is missing`},
		{name: "form: flat name of a nested field", form: url.Values{"start": {"now-1h"}, "canary": {"up"}, "baseline": {"up"}, "pass": {"50"}},
			err: `parameter "marginal" value 75: is above the pass threshold 50`},
		{name: "form: request twice", form: url.Values{"request": {"{}", "{}"}}, err: `parameter "request": given 2 times; accepted: once`},
		{name: "form: bad request", form: url.Values{"request": {`{"window": 1}`}}, err: `parameter "request": field "window": a JSON number is not accepted here; accepted: a JSON object`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.form != nil {
				_, err = ParseForm(tc.form, "parameter")
			} else {
				_, err = ParseRequest([]byte(tc.body))
			}
			var re *RequestError
			require.ErrorAs(t, err, &re)
			require.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                       now,
		"now-15m":                   now.Add(-15 * time.Minute),
		"now-1h30m":                 now.Add(-90 * time.Minute),
		"2026-11-25T09:00:00Z":      now.Add(-time.Hour),
		"2026-11-25T11:00:00+02:00": now.Add(-time.Hour),
		"1795597200":                now.Add(-time.Hour),
		"1795597200000":             now.Add(-time.Hour),
		"1795597200.5":              now.Add(-time.Hour + 500*time.Millisecond),
	} {
		tr, err := ParseTime(in)
		require.NoError(t, err, in)
		require.True(t, want.Equal(tr.At(now)), "%s: %s", in, tr.At(now))
	}
	for _, in := range []string{"", "today", "now+5m", "now-", "2026-11-25 09:00", "1e16", "NaN", "1969-12-31T23:00:00Z"} {
		_, err := ParseTime(in)
		require.Error(t, err, in)
	}
}

// TestParseTimeAsEvents: an absolute window time is read exactly as a change
// event's timestamp is, so a window can be copied from the event log.
func TestParseTimeAsEvents(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, in := range []string{
		"2026-11-25T09:00:00Z", "2026-11-25T09:00:00.123456Z", "2026-11-25T10:00:00+0100", "2026-11-25 09:00:00Z",
		"2026-11-25T10:00:00 +0100", " 1795597200 ", "1795597200.0005", "99999999999", "100000000000", "1000000000000000",
		"", "x", "-1", "1e16", "Inf", "1969-12-31T23:59:59.999Z", "1970-01-01T00:30:00+01:00",
	} {
		want, wantErr := events.ParseTimestamp(in)
		tr, err := ParseTime(in)
		if wantErr != nil {
			require.EqualError(t, err, wantErr.Error(), "%q", in)
			continue
		}
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, tr.At(now).UnixMilli(), "%q", in)
	}

	// A JSON number in a request is epoch seconds or milliseconds as an
	// event's numeric timestamp is.
	for _, n := range []string{"1795597200", "1795597200000", "1795597200.5", "0"} {
		p, err := ParseRequest([]byte(`{"window": {"start": ` + n + `, "end": "now"}, "metrics": [{"canary": "up", "baseline": "up"}]}`))
		require.NoError(t, err, n)
		var f float64
		_, err = fmt.Sscan(n, &f)
		require.NoError(t, err)
		want, err := events.EpochToMillis(f)
		require.NoError(t, err)
		require.Equal(t, want, p.Window.Start.At(now).UnixMilli(), n)
	}
}

// judgeStack is the judge over a real event log, TSDB and PromQL engine.
type judgeStack struct {
	svc     *Service
	events  *events.Service
	backend *storage.Embedded
}

func newJudgeStack(t *testing.T, maxWindow time.Duration) *judgeStack {
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "state.db"))
	require.NoError(t, err)
	require.NoError(t, db.CreateOrg(context.Background(), "acme"))
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	backend := storage.NewEmbedded(logger, reg, storage.EmbeddedOptions{Dir: filepath.Join(dir, "tsdb"), Retention: 24 * time.Hour, OutOfOrderWindow: 7 * 24 * time.Hour})
	evs := events.NewService(logger, reg, db, backend, events.Options{})
	require.NoError(t, evs.Recover(context.Background()))
	go evs.Run()
	t.Cleanup(func() {
		evs.Stop()
		backend.Close()
		db.Close()
	})
	engine := promql.NewEngine(promql.EngineOpts{Logger: logger, MaxSamples: 1e7, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	queryable := storage.Routed{Backend: backend}
	query := func(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]Series, error) {
		qry, err := engine.NewRangeQuery(ctx, queryable, nil, q, start, end, step)
		if err != nil {
			return nil, err
		}
		defer qry.Close()
		m, err := qry.Exec(ctx).Matrix()
		if err != nil {
			return nil, err
		}
		var out []Series
		for _, s := range m {
			ser := Series{Labels: s.Metric}
			for _, p := range s.Floats {
				ser.Values = append(ser.Values, p.F)
			}
			out = append(out, ser)
		}
		return out, nil
	}
	svc := NewService(logger, ServiceOptions{Query: query, Events: evs, MaxWindow: maxWindow})
	return &judgeStack{svc: svc, events: evs, backend: backend}
}

func (js *judgeStack) write(t *testing.T, evs ...string) {
	t.Helper()
	decoded, err := events.Decode([]byte("["+strings.Join(evs, ",")+"]"), time.Now(), events.DefaultLimits)
	require.NoError(t, err)
	_, err = js.events.Write(context.Background(), "acme", decoded)
	require.NoError(t, err)
}

func ctxOf() context.Context { return storage.WithOrg(context.Background(), "acme") }

func TestWindow(t *testing.T) {
	js := newJudgeStack(t, 2*time.Hour)
	now := time.Now().Truncate(time.Millisecond)
	ms := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	js.write(t,
		fmt.Sprintf(`{"event_name": "deploy", "event_state": "start", "timestamp": %d, "attributes": {"service": "checkout", "env": "prod"}}`, ms(50*time.Minute)),
		fmt.Sprintf(`{"event_name": "deploy", "event_state": "stop", "timestamp": %d, "attributes": {"service": "checkout", "env": "prod"}}`, ms(40*time.Minute)),
		fmt.Sprintf(`{"event_name": "deploy", "event_state": "start", "timestamp": %d, "attributes": {"service": "cart", "env": "prod"}}`, ms(20*time.Minute)),
		fmt.Sprintf(`{"event_name": "deploy", "event_state": "start", "timestamp": %d, "attributes": {"service": "search"}}`, ms(3*time.Hour)),
	)
	plan := func(window string) *Plan {
		p, err := ParseRequest([]byte(`{"window": ` + window + `, "metrics": [{"canary": "up", "baseline": "up"}]}`))
		require.NoError(t, err)
		return p
	}
	for _, tc := range []struct {
		name       string
		window     string
		start, end time.Time
		step       time.Duration
		open       bool
		err        string
	}{
		{name: "latest start, open: to now", window: `{"event_name": "deploy"}`, start: now.Add(-20 * time.Minute), end: now, step: 15 * time.Second, open: true},
		{name: "match picks a stopped one", window: `{"event_name": "deploy", "match": {"service": "checkout"}}`, start: now.Add(-50 * time.Minute), end: now.Add(-40 * time.Minute), step: 15 * time.Second},
		{name: "match is a subset of the labels", window: `{"event_name": "deploy", "match": {"env": "prod"}}`, start: now.Add(-20 * time.Minute), end: now, step: 15 * time.Second, open: true},
		{name: "no such labels", window: `{"event_name": "deploy", "match": {"service": "cart", "env": "dev"}}`,
			err: `no start of event "deploy" with labels {env="dev", service="cart"} is in the event log`},
		{name: "no such event", window: `{"event_name": "rollback"}`, err: `no start of event "rollback" is in the event log`},
		{name: "too long", window: `{"event_name": "deploy", "match": {"service": "search"}}`,
			err: `the window of event "deploy" with labels {service="search"} is 3h long`},
		{name: "explicit, the end in the future is now", window: fmt.Sprintf(`{"start": %d, "end": %d}`, ms(time.Hour), ms(-time.Hour)), start: now.Add(-time.Hour), end: now, step: 15 * time.Second},
		{name: "explicit, a long window stretches the step", window: `{"start": "now-2h"}`, start: now.Add(-2 * time.Hour), end: now, step: 15 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := js.svc.window(ctxOf(), "acme", plan(tc.window), now)
			if tc.err != "" {
				var we *WindowError
				require.ErrorAs(t, err, &we)
				require.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			require.True(t, tc.start.Equal(w.Start), "start %s, want %s", w.Start, tc.start)
			require.True(t, tc.end.Equal(w.End), "end %s, want %s", w.End, tc.end)
			require.Equal(t, tc.step, w.Step)
			if w.Event != nil {
				require.Equal(t, tc.open, w.Event.Open)
			}
		})
	}

	// The step: 15s up to 1000 points, then stretched to whole seconds.
	long := NewService(slog.New(slog.DiscardHandler), ServiceOptions{MaxWindow: 24 * time.Hour})
	for length, step := range map[time.Duration]time.Duration{
		15 * time.Minute: 15 * time.Second,
		4 * time.Hour:    15 * time.Second,
		6 * time.Hour:    22 * time.Second,
		24 * time.Hour:   87 * time.Second,
	} {
		p := plan(fmt.Sprintf(`{"start": %d, "end": %d}`, now.Add(-length).UnixMilli(), now.UnixMilli()))
		w, err := long.window(ctxOf(), "acme", p, now)
		require.NoError(t, err)
		require.Equal(t, step, w.Step, "window %s", length)
		require.LessOrEqual(t, w.Points(), autoPoints)
	}
	_, err := long.window(ctxOf(), "acme", plan(`{"event_name": "deploy"}`), now)
	require.ErrorContains(t, err, "this server keeps no change events")
}

// TestAnalyze runs the judge on the real engine: a latency 30% higher on
// the canary is High, and a critical High fails the canary.
func TestAnalyze(t *testing.T) {
	js := newJudgeStack(t, 0)
	now := time.Now().Truncate(time.Second)
	from := now.Add(-20 * time.Minute)
	org, err := js.backend.Org("acme")
	require.NoError(t, err)
	app := org.AppenderV2(context.Background())
	rng := rand.New(rand.NewPCG(7, 11))
	for ts := from; !ts.After(now); ts = ts.Add(15 * time.Second) {
		for _, s := range []struct {
			track string
			mean  float64
		}{{"canary", 0.13}, {"stable", 0.10}, {"fast", 0.10}} {
			v := s.mean * (1 + 0.1*rng.NormFloat64())
			_, err := app.Append(0, labels.FromStrings("__name__", "latency_seconds", "track", s.track), 0, ts.UnixMilli(), v, nil, nil, promstorage.AOptions{})
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	js.write(t, fmt.Sprintf(`{"event_name": "checkout-20", "timestamp": %d, "attributes": {"service": "checkout"}}`, from.Add(5*time.Minute).UnixMilli()))

	p, err := ParseRequest([]byte(`{"window": {"event_name": "checkout-20"}, "labels": {"team": "payments"}, "metrics": [
	  {"name": "latency", "canary": "latency_seconds{track=\"canary\"}", "baseline": "latency_seconds{track=\"stable\"}", "direction": "increase", "critical": true},
	  {"name": "same", "canary": "latency_seconds{track=\"fast\"}", "baseline": "latency_seconds{track=\"stable\"}"}]}`))
	require.NoError(t, err)
	rep, err := js.svc.Analyze(ctxOf(), "acme", p)
	require.NoError(t, err)
	require.Equal(t, OutcomeFail, rep.Verdict)
	require.Equal(t, "High", rep.Metrics[0].Classification, rep.Metrics[0].Reason)
	require.True(t, rep.Metrics[0].CriticalFailure)
	require.InDelta(t, 1.3, *rep.Metrics[0].Effect, 0.05)
	require.Equal(t, "Pass", rep.Metrics[1].Classification, rep.Metrics[1].Reason)
	require.Equal(t, 61, rep.Metrics[0].CanaryPoints)
	require.Equal(t, map[string]string{"service": "checkout", "team": "payments", "window_event": "checkout-20", "outcome": "fail", "score": "0"}, rep.Event.Labels)
	require.Empty(t, rep.Event.Error)

	// Not critical, the same canary is marginal: one of two metrics passes
	// with weights 1 and 3.
	p.Metrics[0].Options.Critical = false
	p.Metrics[1].Weight = 3
	p.Record = false
	rep, err = js.svc.Analyze(ctxOf(), "acme", p)
	require.NoError(t, err)
	require.Equal(t, 75.0, rep.Score)
	require.Equal(t, OutcomeMarginal, rep.Verdict)
	require.Equal(t, "score 75 is below the pass threshold 95 and at or above the marginal threshold 75", rep.Reason)
	require.Nil(t, rep.Event)

	// An engine error names the query.
	p, err = ParseRequest([]byte(`{"window": {"event_name": "checkout-20"}, "metrics": [{"canary": "vector(1)", "baseline": "latency_seconds + on() group_left latency_seconds"}]}`))
	require.NoError(t, err)
	_, err = js.svc.Analyze(ctxOf(), "acme", p)
	var qe *QueryError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, "metrics[0].baseline", qe.Field)
	require.NotNil(t, errors.Unwrap(err))

	// A verdict that cannot be recorded is still a verdict.
	p, err = ParseRequest([]byte(fmt.Sprintf(`{"window": {"start": %d, "end": %d}, "metrics": [{"canary": "vector(1)", "baseline": "vector(1)"}]}`,
		now.Add(-8*24*time.Hour).UnixMilli(), now.Add(-8*24*time.Hour+time.Hour).UnixMilli())))
	require.NoError(t, err)
	rep, err = js.svc.Analyze(ctxOf(), "acme", p)
	require.NoError(t, err)
	require.Equal(t, OutcomePass, rep.Verdict)
	require.Contains(t, rep.Event.Error, "the verdict was not recorded")
}

// FuzzParseRequest: no body panics, and every rejection is a *RequestError.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(fullRequest))
	f.Add([]byte(`{"window": {"start": 1e300}, "step": 1e300, "metrics": [{"canary": "up", "baseline": "up"}]}`))
	f.Add([]byte(`{"window": {"start": "now-1y"}, "metrics": [{"canary": "sum(", "baseline": "up"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseRequest(body)
		if err != nil {
			var re *RequestError
			require.ErrorAs(t, err, &re)
			return
		}
		require.NotEmpty(t, p.Metrics)
	})
}

// FuzzParseForm: no query string panics, and every rejection is a
// *RequestError.
func FuzzParseForm(f *testing.F) {
	f.Add("event_name=x&match.service=y&canary=up&baseline=up&step=15s&critical=true")
	f.Add("request=%7B%7D")
	f.Add("start=now-1h&canary=up&baseline=up&weight=NaN")
	f.Fuzz(func(t *testing.T, query string) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		if _, err := ParseForm(form, "parameter"); err != nil {
			var re *RequestError
			require.ErrorAs(t, err, &re)
		}
	})
}
