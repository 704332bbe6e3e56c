package alerting

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
)

func f64(v float64) *float64 { return &v }

func impactOf(verdict string, signals ...events.SignalImpact) *events.Impact {
	return &events.Impact{Verdict: verdict, Signals: signals}
}

func degradedSignal(name string, effect, p float64) events.SignalImpact {
	return events.SignalImpact{Name: name, Verdict: events.VerdictDegraded, Classification: "High", Effect: f64(effect), PValue: f64(p)}
}

func TestRankSuspects(t *testing.T) {
	alertAt := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	alert := labels.FromStrings("alertname", "CheckoutErrors", "service", "checkout", "env", "prod")
	ev := func(id, name string, ago time.Duration, lbls map[string]string) events.Logged {
		e := logged(id, name, "start", alertAt.Add(-ago), lbls)
		return e
	}
	checkout := map[string]string{"service": "checkout", "env": "prod"}
	cases := []struct {
		name    string
		evs     []events.Logged
		impacts []*events.Impact
		want    []string // ids, ranked
		reasons []string
	}{
		{
			name: "degraded first, though farther",
			evs: []events.Logged{
				ev("near", "config-change", 3*time.Minute, checkout),
				ev("bad", "deploy", 12*time.Minute, map[string]string{"service": "checkout", "env": "prod", "version": "checkout-v2"}),
			},
			impacts: []*events.Impact{
				impactOf(events.VerdictNoChange, events.SignalImpact{Name: "error-ratio", Verdict: events.VerdictNoChange}, events.SignalImpact{Name: "latency-p99", Verdict: events.VerdictNoChange}),
				impactOf(events.VerdictDegraded, degradedSignal("latency-p99", 2.04, 0.001), degradedSignal("error-ratio", 4.1, 0.0003), events.SignalImpact{Name: "latency-mean", Verdict: events.VerdictNoChange}),
			},
			want: []string{"bad", "near"},
			reasons: []string{
				"deploy checkout-v2: error-ratio ×4.1 (p=0.0003) and latency-p99 ×2.0 (p=0.001), 12m before the alert",
				"config-change: no change in error-ratio, latency-p99, 3m before the alert",
			},
		},
		{
			name: "the most degraded first: a later change whose windows straddle an earlier bad one degrades less",
			evs: []events.Logged{
				ev("later", "config-change", 5*time.Minute, checkout),
				ev("cause", "deploy", 20*time.Minute, checkout),
			},
			impacts: []*events.Impact{
				impactOf(events.VerdictDegraded, degradedSignal("error-ratio", 1.6, 0.001)),
				impactOf(events.VerdictDegraded, degradedSignal("error-ratio", 5, 0.00001)),
			},
			want: []string{"cause", "later"},
			reasons: []string{
				"deploy: error-ratio ×5.0 (p<0.0001), 20m before the alert",
				"config-change: error-ratio ×1.6 (p=0.001), 5m before the alert",
			},
		},
		{
			name: "errors from none: no ratio, the medians, the most degraded",
			evs: []events.Logged{
				ev("a", "deploy", 5*time.Minute, checkout),
				ev("b", "deploy", 6*time.Minute, checkout),
			},
			impacts: []*events.Impact{
				impactOf(events.VerdictDegraded, degradedSignal("latency-p99", 3, 0.001)),
				impactOf(events.VerdictDegraded, events.SignalImpact{Name: "error-ratio", Verdict: events.VerdictDegraded, Before: f64(0), After: f64(0.05), PValue: f64(0.002)}),
			},
			want:    []string{"b", "a"},
			reasons: []string{"deploy: error-ratio 0 → 0.05 (p=0.002), 6m before the alert", "deploy: latency-p99 ×3.0 (p=0.001), 5m before the alert"},
		},
		{
			name: "without impact: label overlap, then nearness",
			evs: []events.Logged{
				ev("env-wide", "node-upgrade", 2*time.Minute, map[string]string{"env": "prod"}),
				ev("far", "deploy", 25*time.Minute, checkout),
				ev("near", "deploy", 8*time.Minute, checkout),
			},
			impacts: []*events.Impact{nil, nil, {Verdict: events.VerdictNoData, Provisional: true}},
			want:    []string{"near", "far", "env-wide"},
			reasons: []string{"deploy: no data to score (so far), 8m before the alert", "deploy: not scored, 25m before the alert", "node-upgrade: not scored, 2m before the alert"},
		},
		{
			name: "a stop of a start in the context is the same change",
			evs: func() []events.Logged {
				start := ev("s", "migration", 20*time.Minute, checkout)
				stop := logged("s-stop", "migration", "stop", alertAt.Add(-90*time.Second), checkout)
				stop.PairID = "s"
				lone := logged("lone-stop", "rollout", "stop", alertAt.Add(-time.Minute), checkout)
				lone.PairID = "before-the-window"
				return []events.Logged{start, stop, lone}
			}(),
			impacts: []*events.Impact{impactOf(events.VerdictImproved, events.SignalImpact{Name: "latency-p99", Verdict: events.VerdictImproved, Effect: f64(0.5), PValue: f64(0.01)}), nil, nil},
			want:    []string{"lone-stop", "s"},
			reasons: []string{"rollout (stop): not scored, 1m before the alert", "migration: improved latency-p99 ×0.5 (p=0.01), 20m before the alert"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := RankSuspects(alert, alertAt, c.evs, c.impacts)
			var ids, reasons []string
			for _, s := range got {
				for _, e := range c.evs {
					if e.Name == s.Name && e.Timestamp == s.Timestamp && e.State == s.State {
						ids = append(ids, e.ID)
					}
				}
				reasons = append(reasons, s.Reason)
			}
			require.Equal(t, c.want, ids)
			require.Equal(t, c.reasons, reasons)
		})
	}
}

// TestSuspectAnnotations: an alert's context ranked, as its annotations.
func TestSuspectAnnotations(t *testing.T) {
	alertAt := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	fe := &fakeEvents{}
	fe.evs = append(fe.evs,
		logged("1", "deploy", "start", alertAt.Add(-20*time.Minute), map[string]string{"service": "checkout", "version": "checkout-v2"}),
		logged("2", "config-change", "start", alertAt.Add(-4*time.Minute), map[string]string{"service": "checkout"}),
	)
	fe.evs[0].Impact = impactOf(events.VerdictDegraded, degradedSignal("error-ratio", 4.1, 0.0003))
	f := newContextFinder(fe, ContextOptions{Lookback: 30 * time.Minute, MatchLabels: []string{"service"}, MaxEvents: 10})
	f.impact = func(_ context.Context, _ string, e events.Logged, _ time.Time) *events.Impact {
		if e.Impact != nil {
			return e.Impact
		}
		return &events.Impact{Verdict: events.VerdictNoChange, Provisional: true, Signals: []events.SignalImpact{{Name: "error-ratio", Verdict: events.VerdictNoChange}}}
	}
	ac, err := f.context(context.Background(), "acme", labels.FromStrings("service", "checkout"), alertAt)
	require.NoError(t, err)
	c := f.texts(ac, nil)
	require.Equal(t, "1. deploy checkout-v2: error-ratio ×4.1 (p=0.0003), 20m before the alert\n2. config-change: no change in error-ratio (so far), 4m before the alert", c.suspects)
	var sus []Suspect
	require.NoError(t, json.Unmarshal([]byte(c.suspectsJSON), &sus))
	require.Len(t, sus, 2)
	require.Equal(t, "deploy", sus[0].Name)
	require.Equal(t, "degraded", sus[0].Verdict)
	require.Equal(t, map[string]string{"service": "checkout", "version": "checkout-v2"}, sus[0].Labels)
	require.True(t, sus[1].Provisional)
	require.Contains(t, c.suspectsJSON, `"name":"deploy","state":"start","timestamp":"2026-11-25T09:40:00Z","labels":{"service":"checkout","version":"checkout-v2"},"links":[],"verdict":"degraded"`)
	require.Contains(t, c.events, "config-change start at")

	none := f.texts(alertContext{}, nil)
	require.Equal(t, "no suspected changes: no change events sharing service with this alert in the 30m before it started", none.suspects)
	require.Equal(t, "[]", none.suspectsJSON)
}
