package shifts

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func validSettings() Settings {
	return Settings{
		Interval: DefaultInterval,
		Lookback: DefaultLookback,
		Signals: []Signal{{
			Name: "request-rate", Query: `sum by (service) (rate(http_requests_total[5m]))`,
			BaselineOffset: DefaultBaselineOffset, Ratio: DefaultRatio, For: DefaultFor,
		}},
	}
}

func TestSettingsCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Settings)
		errHas string
	}{
		{name: "defaults", change: func(*Settings) {}},
		{name: "scalar query", change: func(s *Settings) { s.Signals[0].Query = `sum(rate(http_requests_total[5m]))` }},
		{name: "for 0", change: func(s *Settings) { s.Signals[0].For = 0 }},
		{name: "step", change: func(s *Settings) { s.Step = time.Minute }},
		{name: "query does not parse", change: func(s *Settings) { s.Signals[0].Query = `sum(rate(x[5m])` }, errHas: `signals[0].query: "sum(rate(x[5m])" does not parse`},
		{name: "range vector", change: func(s *Settings) { s.Signals[0].Query = `x[5m]` }, errHas: "signals[0].query: \"x[5m]\" returns a range vector"},
		{name: "no query", change: func(s *Settings) { s.Signals[0].Query = "" }, errHas: "signals[0].query: missing"},
		{name: "no name", change: func(s *Settings) { s.Signals[0].Name = "" }, errHas: "signals[0].name: missing"},
		{name: "same name twice", change: func(s *Settings) { s.Signals = append(s.Signals, s.Signals[0]) }, errHas: `signals[1].name: "request-rate" is declared twice`},
		{name: "ratio 1", change: func(s *Settings) { s.Signals[0].Ratio = 1 }, errHas: "signals[0].ratio: 1 is not accepted; accepted: a number greater than 1"},
		{name: "no offset", change: func(s *Settings) { s.Signals[0].BaselineOffset = 0 }, errHas: "signals[0].baseline_offset: 0s is not accepted"},
		{name: "for as long as the lookback", change: func(s *Settings) { s.Signals[0].For = time.Hour }, errHas: "signals[0].for: 1h is not accepted"},
		{name: "negative min_value", change: func(s *Settings) { s.Signals[0].MinValue = -1 }, errHas: "signals[0].min_value: -1 is not accepted"},
		{name: "interval under 1s", change: func(s *Settings) { s.Interval = time.Millisecond }, errHas: "interval: 1ms is not accepted"},
		{name: "lookback under a step", change: func(s *Settings) { s.Lookback = 10 * time.Second }, errHas: "lookback: 10s is not accepted; accepted: at least one step (30s)"},
		{name: "too many points", change: func(s *Settings) { s.Lookback = 7 * 24 * time.Hour }, errHas: "lookback: 1w at a step of 30s is 20161 points per query; accepted: at most 11000"},
		{name: "step under 1s", change: func(s *Settings) { s.Step = 100 * time.Millisecond }, errHas: "step: 100ms is not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSettings()
			tc.change(&s)
			err := s.Check()
			if tc.errHas == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}
