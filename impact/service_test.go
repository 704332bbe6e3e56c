package impact

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/impact/scenario"
)

// TestServiceScoresTheMixedScenario: every change of the mixed scenario
// gets the verdict it should, once its after window has passed; the
// series are written; a restart scores nothing twice and what came since.
func TestServiceScoresTheMixedScenario(t *testing.T) {
	h := newHarness(t)
	end := time.Now().Truncate(time.Second)
	sc := scenario.Mixed(1, end)
	h.writeSeries("acme", sc.Series())
	h.writeEvents("acme", sc.Events())
	h.writeEvents("acme", []map[string]any{
		{"id": "no-labels", "event_name": "backup", "timestamp": end.Add(-40 * time.Minute).UnixMilli(), "attributes": map[string]string{"team": "data"}},
	})

	h.setNow(end)
	require.False(t, h.svc.Pass())
	got := h.impacts("acme")
	for i, c := range sc.Changes {
		id := sc.EventID(i)
		if c.Expect == "" {
			require.Nil(t, got[id], "%s (%s): its after window has not passed", id, c.EventName)
			continue
		}
		require.NotNil(t, got[id], "%s (%s %s) is scored", id, c.EventName, c.Service)
		require.Equal(t, c.Expect, got[id].Verdict, "%s (%s %s): %+v", id, c.EventName, c.Service, got[id].Signals)
		require.False(t, got[id].Provisional)
	}
	require.Nil(t, got["no-labels"], "an event without match labels is not scored")

	bad := got[sc.EventID(scenario.MixedCheckoutV2)]
	bySignal := map[string]events.SignalImpact{}
	for _, si := range bad.Signals {
		bySignal[si.Name] = si
	}
	require.Equal(t, events.VerdictDegraded, bySignal["error-ratio"].Verdict)
	require.Equal(t, "High", bySignal["error-ratio"].Classification)
	require.Greater(t, *bySignal["error-ratio"].Effect, 3.0)
	require.Less(t, *bySignal["error-ratio"].PValue, 0.001)
	require.Equal(t, events.VerdictDegraded, bySignal["latency-p99"].Verdict)
	require.Equal(t, events.VerdictDegraded, bySignal["latency-mean"].Verdict)
	require.Equal(t, 0.0, *bad.Score)
	search := got[sc.EventID(scenario.MixedSearchConfig)]
	require.Equal(t, 100.0, *search.Score, "the OpenTelemetry service is scored on its signals")
	for _, si := range search.Signals {
		require.Equal(t, events.VerdictNoChange, si.Verdict, "%s: %s", si.Name, si.Reason)
	}

	// The series, at the scoring time.
	ratio := h.query("acme", `change_event_impact{version="checkout-v2",signal="latency-mean"}`, end)
	require.Len(t, ratio, 1)
	require.Contains(t, ratio[0], `{__name__="change_event_impact", env="prod", event_name="deploy", kind="deploy", service="checkout", signal="latency-mean", version="checkout-v2"}`)
	require.Equal(t, []string{`{__name__="change_event_impact_score", env="prod", event_name="deploy", kind="deploy", service="checkout", version="checkout-v2"} 0`},
		h.query("acme", `change_event_impact_score{version="checkout-v2"}`, end))
	require.Empty(t, h.query("acme", `change_event_impact_score{service="ledger"}`, end), "no data, no score")
	require.Equal(t, 7.0, h.counter("tidemark_impact_events_scored_total"))
	require.Equal(t, 1.0, h.counter("tidemark_impact_events_scored_total", "verdict", "degraded"))
	require.Equal(t, 1.0, h.counter("tidemark_impact_events_scored_total", "verdict", "no_data"))

	// A restart scores nothing twice; a backdated event written since is
	// scored at once; the last change once its window has passed.
	h.newService()
	h.writeEvents("acme", []map[string]any{
		{"id": "backdated", "event_name": "deploy", "timestamp": end.Add(-50 * time.Minute).UnixMilli(), "attributes": map[string]string{"service": "cart", "env": "prod"}},
	})
	h.setNow(end.Add(time.Minute))
	h.svc.Pass()
	require.Equal(t, 1.0, h.counter("tidemark_impact_events_scored_total"))
	got = h.impacts("acme")
	require.Equal(t, events.VerdictNoChange, got["backdated"].Verdict)
	last := sc.EventID(scenario.MixedCheckoutConfig)
	require.Nil(t, got[last])
	h.setNow(end.Add(11 * time.Minute))
	h.svc.Pass()
	got = h.impacts("acme")
	require.NotNil(t, got[last], "scored once its after window has passed")
	require.Equal(t, 2.0, h.counter("tidemark_impact_events_scored_total"))

	// Without the lease, nothing is scored.
	h.svc.StopOrg("acme")
	h.writeEvents("acme", []map[string]any{
		{"id": "unowned", "event_name": "deploy", "timestamp": end.Add(-50 * time.Minute).UnixMilli(), "attributes": map[string]string{"service": "cart", "env": "prod"}},
	})
	h.svc.Pass()
	require.Nil(t, h.impacts("acme")["unowned"])
}

// TestServiceStopEndsTheAfterWindow: a stop sooner than after ends the
// window (no sooner than min_after), and the event is scored then.
func TestServiceStopEndsTheAfterWindow(t *testing.T) {
	h := newHarness(t)
	end := time.Now().Truncate(time.Second)
	start := end.Add(-8 * time.Minute)
	sc := &scenario.Scenario{Seed: 3, Start: end.Add(-50 * time.Minute), End: end, Services: []scenario.Service{{Name: "api", RPS: 20, ErrorRatio: 0.01, Latency: 0.1}}}
	h.writeSeries("acme", sc.Series())
	h.writeEvents("acme", []map[string]any{
		{"id": "short", "event_name": "migration", "event_state": "start", "timestamp": start.UnixMilli(), "attributes": map[string]string{"service": "api"}},
		{"id": "short-stop", "event_name": "migration", "event_state": "stop", "timestamp": start.Add(time.Minute).UnixMilli(), "attributes": map[string]string{"service": "api"}},
		{"id": "long", "event_name": "canary", "event_state": "start", "timestamp": start.UnixMilli(), "attributes": map[string]string{"service": "api"}},
	})
	h.setNow(start.Add(DefaultMinAfter + DefaultDelay))
	h.svc.Pass()
	got := h.impacts("acme")
	require.NotNil(t, got["short"], "due at min_after, its stop being sooner")
	require.Equal(t, start.Add(DefaultMinAfter).UTC().Format("2006-01-02T15:04:05.000Z07:00"), got["short"].Window.AfterEnd)
	for _, si := range got["short"].Signals {
		require.Equal(t, 5, si.AfterPoints, si.Name)
		require.Equal(t, 30, si.BeforePoints, si.Name)
	}
	require.Nil(t, got["long"], "open: due after 10m")
	require.Nil(t, got["short-stop"], "stops are not scored")
}

// TestScoreEvent: on demand, a start whose window has passed is scored
// and stored again; one whose window has not is scored provisionally and
// not stored; a stop is scored as its start.
func TestScoreEvent(t *testing.T) {
	h := newHarness(t)
	end := time.Now().Truncate(time.Second)
	sc := scenario.Mixed(2, end)
	h.writeSeries("acme", sc.Series())
	h.writeEvents("acme", sc.Events())
	h.setNow(end)
	ctx := context.Background()

	imp, err := h.svc.ScoreEvent(ctx, "acme", sc.EventID(scenario.MixedCheckoutV2))
	require.NoError(t, err)
	require.Equal(t, events.VerdictDegraded, imp.Verdict)
	require.False(t, imp.Provisional)
	require.Equal(t, events.VerdictDegraded, h.impacts("acme")[sc.EventID(scenario.MixedCheckoutV2)].Verdict, "stored")

	imp, err = h.svc.ScoreEvent(ctx, "acme", sc.EventID(scenario.MixedCheckoutConfig))
	require.NoError(t, err)
	require.True(t, imp.Provisional)
	require.Nil(t, h.impacts("acme")[sc.EventID(scenario.MixedCheckoutConfig)], "not stored")

	imp, err = h.svc.ScoreEvent(ctx, "acme", sc.EventID(scenario.MixedCartScaleUp)+"-stop")
	require.NoError(t, err)
	require.Equal(t, events.VerdictNoChange, imp.Verdict, "the stop's start")

	_, err = h.svc.ScoreEvent(ctx, "acme", "nope")
	require.True(t, errors.Is(err, ErrNotFound), "%v", err)
	h.writeEvents("acme", []map[string]any{{"id": "bare", "event_name": "backup", "timestamp": end.Add(-time.Hour).UnixMilli()}})
	_, err = h.svc.ScoreEvent(ctx, "acme", "bare")
	require.True(t, errors.Is(err, ErrNotScored), "%v", err)
	require.Contains(t, err.Error(), "none of the labels that tie it to signals (match_labels: [service namespace env app])")
}

// TestImpactOf: an alert's change gets its stored impact, or one so far
// while its after window has not passed, or its start's for a stop.
func TestImpactOf(t *testing.T) {
	h := newHarness(t)
	end := time.Now().Truncate(time.Second)
	sc := scenario.Mixed(4, end)
	h.writeSeries("acme", sc.Series())
	h.writeEvents("acme", sc.Events())
	ctx := context.Background()
	get := func(id string) events.Logged {
		e, err := h.events.Get(ctx, "acme", id)
		require.NoError(t, err)
		return e
	}

	// Three minutes after the bad deploy: too few points a minute apart,
	// so 15s apart; degraded so far.
	bad := get(sc.EventID(scenario.MixedCheckoutV2))
	imp := h.svc.ImpactOf(ctx, "acme", bad, sc.Changes[scenario.MixedCheckoutV2].At.Add(3*time.Minute))
	require.NotNil(t, imp)
	require.True(t, imp.Provisional)
	require.Equal(t, events.VerdictDegraded, imp.Verdict, "%+v", imp.Signals)
	require.Equal(t, 12, imp.Signals[0].AfterPoints)

	h.setNow(end)
	h.svc.Pass()
	bad = get(sc.EventID(scenario.MixedCheckoutV2))
	require.NotNil(t, bad.Impact)
	require.Same(t, bad.Impact, h.svc.ImpactOf(ctx, "acme", bad, end), "stored: as listed")
	stop := get(sc.EventID(scenario.MixedCartScaleUp) + "-stop")
	imp = h.svc.ImpactOf(ctx, "acme", stop, end)
	require.NotNil(t, imp)
	require.Equal(t, events.VerdictNoChange, imp.Verdict, "its start's")
	require.False(t, imp.Provisional)
}
