package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestAlertsWithChangeContext shows firing and pending alerts and the
// change events attached to them.
func TestAlertsWithChangeContext(t *testing.T) {
	s := startServer(t, `alerting:
  evaluation_interval: 1s
  sync_interval: 1s
  change_context:
    lookback: 30m
    match_labels: [service]
`)
	now := time.Now()
	writeSeries(t, s, now.Add(-4*time.Minute), now, 15*time.Second, map[string]func(int) float64{
		"errors": func(int) float64 { return 7 },
	}, map[string]labels.Labels{"errors": labels.FromStrings("__name__", "demo_errors", "service", "checkout")})
	s.postEvents(t, []event{{"event_name": "checkout-deploy", "timestamp": now.Add(-2 * time.Minute).UnixMilli(),
		"attributes": map[string]any{"service": "checkout"},
		"links":      []map[string]string{{"href": "https://ci.example/run/42", "text": "pipeline"}}}})

	const rules = `name: ui
interval: 1s
rules:
  - alert: CheckoutErrors
    expr: demo_errors > 0
    labels: {severity: page}
    annotations: {summary: 'checkout has {{ $value }} errors'}
  - alert: CheckoutErrorsSustained
    expr: demo_errors > 0
    for: 1h
`
	code, body := s.do(t, "POST", "/config/v1/rules/ui", writeToken, "application/yaml", []byte(rules))
	require.Equal(t, 202, code, string(body))

	// Wait for the API to have both, and see whether they carry context.
	var withContext bool
	require.Eventually(t, func() bool {
		code, body := s.do(t, "GET", "/api/v1/alerts", readToken, "", nil)
		withContext = strings.Contains(string(body), "change_events_json")
		return code == 200 && strings.Contains(string(body), `"firing"`) && strings.Contains(string(body), `"pending"`)
	}, 30*time.Second, 200*time.Millisecond)

	b := newBrowser(t)
	b.signIn(t, s)
	b.do(t,
		chromedp.Click(css(`[data-testid=nav-alerts]`)),
		chromedp.WaitVisible(css(`[data-testid=alerts-list][data-state=done]`)),
	)
	al := b.dataset(t, `[data-testid=alerts-list]`)
	require.Equal(t, "1", al["firingCount"])
	require.Equal(t, "1", al["pendingCount"])
	require.Equal(t, []string{"firing", "pending"},
		eval[[]string](t, b, `[...document.querySelectorAll('[data-testid=alert-row]')].map(e => e.dataset.state)`))
	text := b.text(t, `[data-testid=alerts-list]`)
	require.Contains(t, text, "checkout has 7 errors")
	if withContext {
		require.Equal(t, 1, eval[int](t, b, `document.querySelectorAll('[data-testid=alert-row][data-state=firing] [data-testid=alert-change-event]').length`))
		require.Contains(t, text, "checkout-deploy")
		require.Equal(t, "https://ci.example/run/42", eval[string](t, b, `document.querySelector('[data-testid=alert-change-link]').href`))
	} else {
		t.Log("the alerts carry no change_events_json annotation in this build")
	}
	b.screenshot(t, "alerts")
	b.check(t, s.url)
}
