package e2e

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/impact/scenario"
	"github.com/tidemark/tidemark/internal/testutil"
)

// TestImpactBadgesAndSuspects: the mixed scenario, scored by the server,
// shows an impact badge on its events in the list, the timeline and a
// graph's hover, and an alert on the bad service lists the bad deploy
// first among its suspects.
func TestImpactBadgesAndSuspects(t *testing.T) {
	s := startServer(t, `alerting:
  evaluation_interval: 1s
  sync_interval: 1s
impact:
  delay: 1s
`)
	end := time.Now().Truncate(time.Second)
	sc := scenario.Mixed(21, end)
	var series []testutil.Series
	for _, se := range sc.Series() {
		ts := testutil.Series{Labels: se.Labels}
		for _, p := range se.Samples {
			ts.Samples = append(ts.Samples, testutil.Sample{T: p.T, V: p.V})
		}
		series = append(series, ts)
	}
	require.NoError(t, testutil.RemoteWrite(t, s.url+"/api/v1/write", writeToken, false, series))
	var evs []event
	for _, e := range sc.Events() {
		evs = append(evs, event{"id": e.ID, "event_name": e.Name, "event_state": e.State, "timestamp": e.Timestamp, "attributes": e.Attributes})
	}
	s.postEvents(t, evs)
	const rules = `name: impact
rules:
  - alert: CheckoutErrorRatio
    expr: |
      sum by (service, env) (rate(http_requests_total{code=~"5.."}[5m]))
        / sum by (service, env) (rate(http_requests_total[5m])) > 0.02
`
	code, body := s.do(t, "POST", "/config/v1/rules/impact", writeToken, "application/yaml", []byte(rules))
	require.Equal(t, 202, code, string(body))
	bad := sc.EventID(scenario.MixedCheckoutV2)
	require.Eventually(t, func() bool {
		code, body := s.do(t, "GET", "/api/v4/organizations/"+org+"/change_events/"+url.PathEscape(bad), readToken, "", nil)
		return code == 200 && strings.Contains(string(body), `"verdict":"degraded"`)
	}, 40*time.Second, 200*time.Millisecond, "the bad deploy is not scored")
	require.Eventually(t, func() bool {
		_, body := s.do(t, "GET", "/api/v1/alerts", readToken, "", nil)
		return strings.Contains(string(body), "suspected_changes_json") && strings.Contains(string(body), `"firing"`)
	}, 30*time.Second, 200*time.Millisecond)

	b := newBrowser(t)
	b.signIn(t, s)

	// The list and the timeline.
	b.do(t,
		chromedp.Navigate(s.url+"/#/events?from=now-2h&to=now"),
		chromedp.WaitVisible(css(`[data-testid=events-timeline][data-state=done]`)),
	)
	require.Equal(t, "1", b.dataset(t, `[data-testid=events-timeline]`)["degradedCount"])
	require.Equal(t, "degraded", eval[string](t, b, `document.querySelector('[data-testid=event-row][data-event-id="`+bad+`"] [data-testid=impact-badge]').dataset.verdict`))
	require.Contains(t, eval[string](t, b, `document.querySelector('[data-testid=event-row][data-event-id="`+bad+`"] [data-testid=impact-badge]').title`), "error-ratio: degraded ×")
	verdicts := eval[map[string]int](t, b, `[...document.querySelectorAll('[data-testid=events-list] [data-testid=impact-badge]')].reduce((m, e) => (m[e.dataset.verdict] = (m[e.dataset.verdict] || 0) + 1, m), {})`)
	require.Equal(t, map[string]int{"degraded": 1, "no_change": 5, "no_data": 1}, verdicts)
	require.Equal(t, 1, eval[int](t, b, `document.querySelectorAll('[data-testid=events-timeline] [data-verdict=degraded]').length`))
	box := eval[[]float64](t, b, `(() => { const r = document.querySelector('[data-testid=events-timeline] [data-verdict=degraded] rect').getBoundingClientRect(); return [r.x + 4, r.y + r.height / 2]; })()`)
	b.do(t,
		chromedp.MouseEvent(chromedp.MouseMoved, box[0], box[1]),
		chromedp.WaitVisible(css(`[data-testid=events-timeline] [data-testid=tooltip] [data-testid=impact-view]`)),
	)
	tip := b.text(t, `[data-testid=events-timeline] [data-testid=tooltip]`)
	require.Contains(t, tip, "degraded")
	require.Contains(t, tip, "latency-p99: degraded ×")
	b.screenshot(t, "impact-events")

	// A graph of the service with its events: the hover shows the impact.
	q := url.Values{"q": {`sum(rate(http_requests_total{service="checkout"}[1m]))`}, "from": {rfc(end.Add(-time.Hour))}, "to": {rfc(end)}, "step": {"15s"}}
	b.do(t,
		chromedp.Navigate(s.url+"/#/explore?"+q.Encode()),
		chromedp.WaitVisible(css(`[data-testid=plot][data-state=done]`)),
	)
	// A point event is a start that never stops: a window open to now.
	require.Equal(t, 1, eval[int](t, b, `document.querySelectorAll('[data-testid=plot] [data-testid=region][data-verdict=degraded]').length`))
	box = eval[[]float64](t, b, `(() => { const r = document.querySelector('[data-testid=plot] [data-testid=region][data-verdict=degraded] rect').getBoundingClientRect(); return [r.x + 4, r.y + r.height / 2]; })()`)
	b.do(t,
		chromedp.MouseEvent(chromedp.MouseMoved, box[0], box[1]),
		chromedp.WaitVisible(css(`[data-testid=plot] [data-testid=tooltip] [data-testid=impact-view]`)),
	)
	require.Contains(t, b.text(t, `[data-testid=plot] [data-testid=tooltip]`), "error-ratio: degraded")
	b.viewportScreenshot(t, "impact-explore-hover")

	// The alert's suspects, ranked.
	b.do(t,
		chromedp.Click(css(`[data-testid=nav-alerts]`)),
		chromedp.WaitVisible(css(`[data-testid=alerts-list][data-state=done] [data-testid=alert-suspect]`)),
	)
	type suspect struct{ Rank, Verdict, Text string }
	var sus []suspect
	raw := eval[string](t, b, `JSON.stringify([...document.querySelectorAll('[data-testid=alert-suspect]')].map(e => ({Rank: e.dataset.rank, Verdict: e.dataset.verdict, Text: e.textContent})))`)
	require.NoError(t, json.Unmarshal([]byte(raw), &sus))
	require.GreaterOrEqual(t, len(sus), 2)
	require.Equal(t, "degraded", sus[0].Verdict)
	require.Contains(t, sus[0].Text, "deploy checkout-v2: error-ratio ×")
	for _, x := range sus[1:] {
		require.NotEqual(t, "degraded", x.Verdict, x.Text)
	}
	require.False(t, eval[bool](t, b, `[...document.querySelectorAll('[data-testid=alerts-list] dl.meta dt')].some(e => e.textContent.startsWith('suspected'))`), "shown as suspects, not as raw annotations")
	b.screenshot(t, "impact-alert")
	b.check(t, s.url)
}
