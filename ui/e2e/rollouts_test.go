package e2e

import (
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestRolloutStagesAndVerdicts(t *testing.T) {
	s := startServer(t, "")
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-45 * time.Minute)
	writeSeries(t, s, start, end, 15*time.Second, map[string]func(int) float64{
		"ratio": func(i int) float64 { return 0.99 - 0.03*float64(i%40)/40 },
	}, map[string]labels.Labels{"ratio": labels.FromStrings("__name__", "demo_success_ratio", "service", "sample-app")})

	at := func(d time.Duration) int64 { return end.Add(-d).UnixMilli() }
	stage := func(w string) map[string]any {
		return map[string]any{"rollout": "sample-app", "namespace": "prod", "weight": w}
	}
	// verdict is an event of the canary judge over a stage's window.
	verdict := func(window, outcome, score string, from, to time.Duration) []event {
		lbls := map[string]any{"rollout": "sample-app", "namespace": "prod", "window_event": window, "outcome": outcome, "score": score}
		meta := map[string]any{"source": "analysis", "verdict": outcome, "score": score, "reason": "score " + score,
			"metrics": []map[string]any{{"name": "error-ratio", "classification": map[string]string{"pass": "Pass", "fail": "High"}[outcome], "critical": true}}}
		return []event{
			{"event_name": "analysis", "timestamp": at(from), "attributes": lbls, "metadata": meta},
			{"event_name": "analysis", "event_state": "stop", "timestamp": at(to), "attributes": lbls, "metadata": meta},
		}
	}
	evs := []event{
		{"event_name": "sample-app", "timestamp": at(40 * time.Minute), "attributes": map[string]any{"rollout": "sample-app", "namespace": "prod"}},
		{"event_name": "sample-app-20", "timestamp": at(40 * time.Minute), "attributes": stage("20")},
		{"event_name": "sample-app-20", "event_state": "stop", "timestamp": at(30 * time.Minute), "attributes": stage("20")},
		{"event_name": "sample-app-40", "timestamp": at(30 * time.Minute), "attributes": stage("40")},
		{"event_name": "sample-app-40", "event_state": "stop", "timestamp": at(20 * time.Minute), "attributes": stage("40")},
		{"event_name": "sample-app-60", "timestamp": at(20 * time.Minute), "attributes": stage("60")},
		{"event_name": "other-app-20", "timestamp": at(20 * time.Minute), "attributes": map[string]any{"rollout": "other-app"}},
	}
	evs = append(evs, verdict("sample-app-20", "pass", "98", 35*time.Minute, 30*time.Minute)...)
	evs = append(evs, verdict("sample-app-40", "fail", "41", 25*time.Minute, 20*time.Minute)...)
	evs = append(evs, verdict("other-app-20", "pass", "100", 15*time.Minute, 10*time.Minute)...)
	s.postEvents(t, evs)

	b := newBrowser(t)
	b.signIn(t, s)
	q := url.Values{"prefix": {"sample-app-"}, "m": {"demo_success_ratio"}, "from": {rfc(start)}, "to": {rfc(end)}}
	b.do(t,
		chromedp.Navigate(s.url+"/#/rollouts?"+q.Encode()),
		chromedp.WaitVisible(css(`[data-testid=rollout-stages][data-state=done]`)),
		chromedp.WaitVisible(css(`[data-testid=rollout-plot]`)),
	)
	st := b.dataset(t, `[data-testid=rollout-stages]`)
	require.Equal(t, "3", st["stageCount"], "sample-app-20, -40 and the open -60")
	require.Equal(t, "2", st["verdictCount"], "the judge's verdicts on sample-app stages")
	plot := b.dataset(t, `[data-testid=rollout-plot]`)
	require.Equal(t, "1", plot["seriesCount"])
	require.Equal(t, "3", plot["regionCount"])
	require.Equal(t, "2", plot["verdictCount"])
	require.Equal(t, []string{"pass 98", "fail 41"},
		eval[[]string](t, b, `[...document.querySelectorAll('[data-testid=verdict-badge]')].map(e => e.textContent)`))
	b.screenshot(t, "rollouts")
	b.check(t, s.url)
}
