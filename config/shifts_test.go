package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/shifts"
)

func TestTrafficShifts(t *testing.T) {
	c, err := Parse([]byte(`
traffic_shifts:
  interval: 30s
  lookback: 1h
  signals:
    - name: request-rate
      query: 'sum by (service) (rate(http_requests_total[5m]))'
      baseline_offset: 1w
      ratio: 2
      for: 5m
organizations:
  - slug: acme
    traffic_shifts:
      interval: 1m
      step: 30s
      signals:
        - {name: errors, query: 'sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))', ratio: 3, for: 0s, min_value: 0.5}
  - slug: quiet
    traffic_shifts: {}
  - slug: globex
`), t.TempDir())
	require.NoError(t, err)

	top := shifts.Settings{
		Interval: 30 * time.Second, Lookback: time.Hour,
		Signals: []shifts.Signal{{
			Name: "request-rate", Query: `sum by (service) (rate(http_requests_total[5m]))`,
			BaselineOffset: 7 * 24 * time.Hour, Ratio: 2, For: 5 * time.Minute,
		}},
	}
	for _, org := range []string{"globex", "initech"} {
		s, ok := c.TrafficShiftSettings(org)
		require.True(t, ok, org)
		require.Equal(t, top, s, "%s has the top-level section", org)
	}
	acme, ok := c.TrafficShiftSettings("acme")
	require.True(t, ok)
	require.Equal(t, shifts.Settings{
		Interval: time.Minute, Lookback: time.Hour, Step: 30 * time.Second,
		Signals: []shifts.Signal{{
			Name: "errors", Query: `sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))`,
			BaselineOffset: 7 * 24 * time.Hour, Ratio: 3, For: 0, MinValue: 0.5,
		}},
	}, acme, "the organization's own section replaces the top-level one; unset keys take the defaults, for: 0s stays 0")
	_, ok = c.TrafficShiftSettings("quiet")
	require.False(t, ok, "an empty section turns the detector off")

	none, err := Parse([]byte("organizations: [{slug: acme}]"), t.TempDir())
	require.NoError(t, err)
	_, ok = none.TrafficShiftSettings("acme")
	require.False(t, ok, "no section: no detector")

	defaults, err := Parse([]byte("traffic_shifts: {signals: [{name: r, query: 'sum(up)'}]}"), t.TempDir())
	require.NoError(t, err)
	s, ok := defaults.TrafficShiftSettings("acme")
	require.True(t, ok)
	require.Equal(t, shifts.Settings{Interval: 30 * time.Second, Lookback: time.Hour, Signals: []shifts.Signal{{
		Name: "r", Query: "sum(up)", BaselineOffset: 7 * 24 * time.Hour, Ratio: 2, For: 5 * time.Minute,
	}}}, s)

	require.NoError(t, c.CheckTrafficShiftLookback(7*24*time.Hour))
	require.ErrorContains(t, c.CheckTrafficShiftLookback(30*time.Minute), "traffic_shifts.lookback: 1h is not accepted; accepted: at most the events' backfill window (--events.backfill-window, 30m)")
}

func TestTrafficShiftsErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, errHas string }{
		{"query does not parse", "traffic_shifts: {signals: [{name: r, query: 'sum(rate(x[5m])'}]}", `traffic_shifts.signals[0].query: "sum(rate(x[5m])" does not parse`},
		{"range vector", "traffic_shifts: {signals: [{name: r, query: 'x[5m]'}]}", `traffic_shifts.signals[0].query: "x[5m]" returns a range vector`},
		{"no name", "traffic_shifts: {signals: [{query: 'sum(up)'}]}", "traffic_shifts.signals[0].name: missing"},
		{"ratio under 1", "traffic_shifts: {signals: [{name: r, query: 'sum(up)', ratio: 0.5}]}", "traffic_shifts.signals[0].ratio: 0.5 is not accepted"},
		{"for past the lookback", "traffic_shifts: {lookback: 10m, signals: [{name: r, query: 'sum(up)', for: 10m}]}", "traffic_shifts.signals[0].for: 10m is not accepted"},
		{"unknown field", "traffic_shifts: {signals: [{name: r, query: 'sum(up)', offset: 1d}]}", "field offset not found"},
		{"bad duration", "traffic_shifts: {interval: soon}", `not a valid duration string: "soon"`},
		{"organization's section", "organizations: [{slug: acme, traffic_shifts: {signals: [{name: r, query: 'sum('}]}}]", `organizations[0] (acme) traffic_shifts.signals[0].query: "sum(" does not parse`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), t.TempDir())
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}
