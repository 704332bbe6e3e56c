package e2e

import (
	"math"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testutil"
)

// writeSeries remote-writes series sampled every step over [from, to].
func writeSeries(t *testing.T, s *server, from, to time.Time, step time.Duration, series map[string]func(i int) float64, lbls map[string]labels.Labels) {
	t.Helper()
	var out []testutil.Series
	for name, f := range series {
		ser := testutil.Series{Labels: lbls[name]}
		i := 0
		for ts := from; !ts.After(to); ts = ts.Add(step) {
			ser.Samples = append(ser.Samples, testutil.Sample{T: ts.UnixMilli(), V: f(i)})
			i++
		}
		out = append(out, ser)
	}
	require.NoError(t, testutil.RemoteWrite(t, s.url+"/api/v1/write", writeToken, false, out))
}

func rfc(ts time.Time) string { return ts.UTC().Format(time.RFC3339) }

// exploreURL is the Explore view of a query over [from, to].
func exploreURL(s *server, query string, from, to time.Time, step string) string {
	q := url.Values{"q": {query}, "from": {rfc(from)}, "to": {rfc(to)}, "step": {step}}
	return s.url + "/#/explore?" + q.Encode()
}

func TestExploreDrawsSeriesAndChangeEvents(t *testing.T) {
	s := startServer(t, "")
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-30 * time.Minute)

	// Two series over the range and a bit before it.
	writeSeries(t, s, start.Add(-5*time.Minute), end, 15*time.Second, map[string]func(int) float64{
		"stable": func(i int) float64 { return 100 + 20*math.Sin(float64(i)/8) },
		"canary": func(i int) float64 { return 40 + 10*math.Cos(float64(i)/5) },
	}, map[string]labels.Labels{
		"stable": labels.FromStrings("__name__", "demo_requests_per_second", "service", "checkout", "track", "stable"),
		"canary": labels.FromStrings("__name__", "demo_requests_per_second", "service", "checkout", "track", "canary"),
	})

	// In the range: two windows (one closed, one still open) and three
	// point events (two stops that found no start, and a start and stop
	// at the same instant). Before it: a window that ended before it.
	at := func(d time.Duration) int64 { return end.Add(-d).UnixMilli() }
	checkout := map[string]any{"service": "checkout"}
	deploy := map[string]any{"service": "checkout", "version": "v2.4.1"}
	s.postEvents(t, []event{
		{"event_name": "old-deploy", "timestamp": at(50 * time.Minute), "attributes": checkout},
		{"event_name": "old-deploy", "event_state": "stop", "timestamp": at(45 * time.Minute), "attributes": checkout},
		{"event_name": "checkout-deploy", "timestamp": at(25 * time.Minute), "attributes": deploy,
			"metadata": map[string]any{"commit": "9f2c1e7", "author": "ci"},
			"links":    []map[string]string{{"href": "https://ci.example/run/42", "text": "pipeline"}}},
		{"event_name": "checkout-deploy", "event_state": "stop", "timestamp": at(20 * time.Minute), "attributes": deploy},
		{"event_name": "checkout-canary", "timestamp": at(10 * time.Minute), "attributes": map[string]any{"service": "checkout", "weight": 20}},
		{"event_name": "config-reload", "event_state": "stop", "timestamp": at(28 * time.Minute), "attributes": checkout},
		{"event_name": "feature-flag", "event_state": "stop", "timestamp": at(15 * time.Minute), "attributes": map[string]any{"flag": "new-cart"}},
		{"event_name": "cache-flush", "timestamp": at(5 * time.Minute), "attributes": checkout},
		{"event_name": "cache-flush", "event_state": "stop", "timestamp": at(5 * time.Minute), "attributes": checkout},
	})

	b := newBrowser(t)
	b.signIn(t, s)

	// Completion of metric names, then of label values.
	const completions = `JSON.stringify([...document.querySelectorAll('[data-testid=completion-item] .completion-text')].map(e => e.textContent))`
	b.do(t,
		chromedp.WaitVisible(css(`[data-testid=query-input]`)),
		chromedp.SendKeys(css(`[data-testid=query-input]`), "demo_req"),
	)
	b.waitFor(t, completions+` === '["demo_requests_per_second"]'`, 10*time.Second)
	b.do(t,
		chromedp.KeyEvent(kb.Tab),
		chromedp.SendKeys(css(`[data-testid=query-input]`), `{track="c`),
	)
	b.waitFor(t, completions+` === '["canary"]'`, 10*time.Second)
	b.do(t, chromedp.KeyEvent(kb.Tab))
	require.Equal(t, `demo_requests_per_second{track="canary`, eval[string](t, b, `document.querySelector('[data-testid=query-input]').value`))

	// The query over the range, typed as a person would.
	b.do(t,
		setValue(`[data-testid=query-input]`, ""),
		chromedp.SendKeys(css(`[data-testid=query-input]`), "demo_requests_per_second"),
		setValue(`[data-testid=range-from]`, rfc(start)),
		setValue(`[data-testid=range-to]`, rfc(end)),
		setValue(`[data-testid=range-step]`, "15s"),
		chromedp.Click(css(`[data-testid=query-run]`)),
		chromedp.WaitVisible(css(`[data-testid=plot][data-state=done]`)),
	)
	plot := b.dataset(t, `[data-testid=plot]`)
	require.Equal(t, "2", plot["seriesCount"], "series drawn")
	require.Equal(t, "3", plot["markerCount"], "point events drawn")
	require.Equal(t, "2", plot["regionCount"], "windows drawn")
	require.Equal(t, strconv.Itoa(2*121), plot["pointCount"])
	require.Equal(t, 2, eval[int](t, b, `document.querySelectorAll('[data-testid=series-row]').length`))
	require.Equal(t, 5, eval[int](t, b, `document.querySelectorAll('[data-testid=plot] [data-testid=marker], [data-testid=plot] [data-testid=region]').length`))
	require.Equal(t, 1, eval[int](t, b, `document.querySelectorAll('[data-testid=plot] .region-bar.open').length`), "the canary is still open")

	// Hovering a marker shows the event.
	box := eval[[]float64](t, b, `(() => { const r = document.querySelector('[data-testid=plot] [data-testid=marker] path').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`)
	b.do(t,
		chromedp.MouseEvent(chromedp.MouseMoved, box[0], box[1]),
		chromedp.WaitVisible(css(`[data-testid=tooltip]`)),
	)
	tip := b.text(t, `[data-testid=tooltip]`)
	require.Contains(t, tip, "config-reload")
	require.Contains(t, tip, "service=checkout")
	b.viewportScreenshot(t, "explore-hover")

	// Hovering the plot shows the values at that time.
	box = eval[[]float64](t, b, `(() => { const r = document.querySelector('[data-testid=plot] svg').getBoundingClientRect(); return [r.x + r.width * 0.6, r.y + r.height / 2]; })()`)
	b.do(t, chromedp.MouseEvent(chromedp.MouseMoved, box[0], box[1]))
	b.waitFor(t, `document.querySelector('[data-testid=tooltip]').textContent.includes('track="canary"')`, 5*time.Second)
	require.Contains(t, b.text(t, `[data-testid=tooltip]`), `demo_requests_per_second{service="checkout", track="stable"}`)

	// Clicking a window pins it, with its labels, metadata and links.
	b.do(t,
		chromedp.Click(css(`[data-testid=plot] [data-testid=region] rect`)),
		chromedp.WaitVisible(css(`[data-testid=tooltip].pinned [data-testid=tooltip-link]`)),
	)
	tip = b.text(t, `[data-testid=tooltip]`)
	require.Contains(t, tip, "checkout-deploy")
	require.Contains(t, tip, "9f2c1e7")
	require.Contains(t, tip, "version=v2.4.1")
	require.Contains(t, tip, "5m")
	require.Equal(t, "https://ci.example/run/42", eval[string](t, b, `document.querySelector('[data-testid=tooltip-link]').href`))
	// Not a whole-page capture: its relayout redraws the plot (150 ms after
	// the resize), which unpins the window before the next click.
	b.viewportScreenshot(t, "explore")

	// The events filter, by name and labels: only the deploy's window.
	b.do(t,
		chromedp.Click(css(`.tip-close`)),
		setValue(`[data-testid=event-filter]`, `{event_name=~"checkout-.*", version="v2.4.1"}`),
		chromedp.Click(css(`[data-testid=query-run]`)),
	)
	b.waitFor(t, `(p => p.dataset.state === 'done' && p.dataset.regionCount === '1')(document.querySelector('[data-testid=plot]'))`, 10*time.Second)
	require.Equal(t, "0", b.dataset(t, `[data-testid=plot]`)["markerCount"])

	// The address keeps the view: a reload draws the same.
	b.do(t, chromedp.Reload(), chromedp.WaitVisible(css(`[data-testid=plot][data-state=done]`)))
	plot = b.dataset(t, `[data-testid=plot]`)
	require.Equal(t, "2", plot["seriesCount"])
	require.Equal(t, "1", plot["regionCount"])

	// An invalid query: Prometheus's own message, next to the query.
	const bad = `sum(up) or 0.99`
	want := s.promError(t, bad, start, end, 15*time.Second)
	b.do(t,
		setValue(`[data-testid=query-input]`, bad),
		chromedp.Click(css(`[data-testid=query-run]`)),
		chromedp.WaitVisible(css(`[data-testid=query-error]`)),
	)
	shown := b.text(t, `[data-testid=query-error]`)
	t.Logf("error shown: %s", shown)
	require.Contains(t, shown, want)
	require.Contains(t, shown, "bad_data")
	// It sits right under the query.
	require.True(t, eval[bool](t, b, `document.querySelector('.query-bar').nextElementSibling === document.querySelector('[data-testid=query-error]')`))
	b.screenshot(t, "explore-error")

	b.check(t, s.url)
}
