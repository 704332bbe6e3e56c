package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestScriptUnits runs the page's own modules in the browser on cases of
// their pure functions: PromQL completion contexts, and how events become
// regions and markers.
func TestScriptUnits(t *testing.T) {
	s := startServer(t, "")
	b := newBrowser(t)
	b.do(t, chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(css(`[data-testid=signin-form]`)))

	type ctx struct {
		Kind   *string `json:"kind"`
		Prefix string  `json:"prefix"`
		Metric string  `json:"metric"`
		Label  string  `json:"label"`
	}
	kind := func(s string) *string { return &s }
	for _, tc := range []struct {
		text string
		want ctx
	}{
		{`rate(http_re`, ctx{Kind: kind("metric"), Prefix: "http_re"}},
		{`up{jo`, ctx{Kind: kind("label"), Prefix: "jo", Metric: "up"}},
		{`up{job="api", inst`, ctx{Kind: kind("label"), Prefix: "inst", Metric: "up"}},
		{`up{job="ap`, ctx{Kind: kind("value"), Prefix: "ap", Metric: "up", Label: "job"}},
		{`{job=~"ap`, ctx{Kind: kind("value"), Prefix: "ap", Label: "job"}},
		{`sum by (jo`, ctx{Kind: kind("label"), Prefix: "jo"}},
		{`rate(x[5`, ctx{}},
		{`up{job="a"} > 1`, ctx{}},
	} {
		got := eval[ctx](t, b, fmt.Sprintf(`import('./ui/js/complete.js').then(m => {
			const c = m.context(%q, %d);
			return {kind: c.kind || null, prefix: c.prefix || '', metric: c.metric || '', label: c.label || ''};
		})`, tc.text, len(tc.text)))
		require.Equal(t, tc.want, got, tc.text)
	}

	// Events as the log lists them, and what a graph of 10:00 to 10:50
	// draws of them at 10:45.
	type shapes struct {
		Regions []struct {
			From, To int64
			Open     bool
			Name     string
		}
		Markers []struct {
			T    int64
			Name string
		}
	}
	got := eval[shapes](t, b, `import('./ui/js/eventset.js').then(m => {
		const t = (min) => new Date(Date.UTC(2026, 0, 1, 10, min)).toISOString();
		const evs = [
			{id: 'a', event_name: 'deploy', event_state: 'start', timestamp: t(10), pair_id: 'b', duration_seconds: 300, open: false},
			{id: 'b', event_name: 'deploy', event_state: 'stop', timestamp: t(15), pair_id: 'a', duration_seconds: 300, open: false},
			{id: 'c', event_name: 'canary', event_state: 'start', timestamp: t(40), open: true},
			{id: 'd', event_name: 'reload', event_state: 'stop', timestamp: t(20), open: false},
			{id: 'e', event_name: 'flush', event_state: 'start', timestamp: t(25), pair_id: 'f', duration_seconds: 0, open: false},
			{id: 'f', event_name: 'flush', event_state: 'stop', timestamp: t(25), pair_id: 'e', duration_seconds: 0, open: false},
			{id: 'g', event_name: 'early', event_state: 'stop', timestamp: t(2), pair_id: 'x', duration_seconds: 600, open: false},
			{id: 'h', event_name: 'outside', event_state: 'stop', timestamp: t(59), open: false},
		];
		const sh = m.shapes(evs, Date.parse(t(0)), Date.parse(t(50)), Date.parse(t(45)));
		return {regions: sh.regions.map(r => ({from: r.from, to: r.to, open: r.open, name: r.name})),
			markers: sh.markers.map(k => ({t: k.t, name: k.name}))};
	})`)
	ms := func(min int) int64 { return time.Date(2026, 1, 1, 10, min, 0, 0, time.UTC).UnixMilli() }
	require.Len(t, got.Regions, 3)
	require.Equal(t, "early", got.Regions[0].Name, "a stop whose start is before the range")
	require.Equal(t, []int64{ms(0), ms(2)}, []int64{got.Regions[0].From, got.Regions[0].To}, "clipped to the range")
	require.Equal(t, "deploy", got.Regions[1].Name)
	require.Equal(t, []int64{ms(10), ms(15)}, []int64{got.Regions[1].From, got.Regions[1].To})
	require.Equal(t, "canary", got.Regions[2].Name)
	require.True(t, got.Regions[2].Open)
	require.Equal(t, []int64{ms(40), ms(45)}, []int64{got.Regions[2].From, got.Regions[2].To}, "open: to now")
	require.Len(t, got.Markers, 2)
	require.Equal(t, "reload", got.Markers[0].Name)
	require.Equal(t, "flush", got.Markers[1].Name)
	require.Equal(t, ms(25), got.Markers[1].T)
	b.check(t, s.url)
}
