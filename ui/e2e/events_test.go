package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

func TestEventsTimeline(t *testing.T) {
	s := startServer(t, "")
	now := time.Now()
	at := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	prod := map[string]any{"service": "checkout", "env": "prod"}
	s.postEvents(t, []event{
		{"event_name": "checkout-deploy", "timestamp": at(3 * time.Hour), "attributes": prod,
			"metadata": map[string]any{"commit": "9f2c1e7"},
			"links":    []map[string]string{{"href": "https://ci.example/run/42", "text": "pipeline"}, {"href": "javascript:alert(1)", "text": "not a link"}}},
		{"event_name": "checkout-deploy", "event_state": "stop", "timestamp": at(2*time.Hour + 45*time.Minute), "attributes": prod},
		{"event_name": "db-migration", "timestamp": at(90 * time.Minute), "attributes": map[string]any{"service": "orders", "env": "prod"}},
		{"event_name": "config-reload", "event_state": "stop", "timestamp": at(30 * time.Minute), "attributes": map[string]any{"service": "orders", "env": "staging"}},
	})
	b := newBrowser(t)
	b.signIn(t, s)
	b.do(t,
		chromedp.Click(css(`[data-testid=nav-events]`)),
		chromedp.WaitVisible(css(`[data-testid=events-timeline][data-state=done]`)),
	)
	tl := b.dataset(t, `[data-testid=events-timeline]`)
	require.Equal(t, "4", tl["eventCount"])
	require.Equal(t, "1", tl["openCount"])
	require.Equal(t, "2", tl["regionCount"], "the deploy and the open migration")
	require.Equal(t, "1", tl["markerCount"], "the unpaired reload")
	require.Equal(t, "3", tl["laneCount"])

	require.Equal(t, 4, eval[int](t, b, `document.querySelectorAll('[data-testid=event-row]').length`))
	require.Equal(t, 1, eval[int](t, b, `document.querySelectorAll('[data-testid=event-open]').length`))
	require.Equal(t, []string{"https://ci.example/run/42 _blank"},
		eval[[]string](t, b, `[...document.querySelectorAll('[data-testid=events-list] [data-testid=event-link]')].map(a => a.href + ' ' + a.target)`),
		"only http(s) links are links")
	list := b.text(t, `[data-testid=events-list]`)
	require.Contains(t, list, "15m", "the deploy's duration")
	require.Contains(t, list, "unpaired")
	require.Contains(t, list, "not a link")
	b.screenshot(t, "events")

	// Filter by labels.
	b.do(t,
		setValue(`[data-testid=events-match]`, `{env="prod"}`),
		chromedp.Click(css(`[data-testid=events-run]`)),
	)
	b.waitFor(t, `document.querySelector('[data-testid=events-timeline]').dataset.eventCount === '3'`, 10*time.Second)
	// Filter by name.
	b.do(t,
		setValue(`[data-testid=events-name]`, "db-migration"),
		chromedp.Click(css(`[data-testid=events-run]`)),
	)
	b.waitFor(t, `document.querySelector('[data-testid=events-timeline]').dataset.eventCount === '1'`, 10*time.Second)
	// A bad selector: the server's message.
	b.do(t,
		setValue(`[data-testid=events-match]`, `{env=}`),
		chromedp.Click(css(`[data-testid=events-run]`)),
		chromedp.WaitVisible(css(`[data-testid=events-error]`)),
	)
	require.Contains(t, b.text(t, `[data-testid=events-error]`), `parameter "match[]"`)
	b.check(t, s.url)
}
