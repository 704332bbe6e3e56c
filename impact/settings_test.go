package impact

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/judge"
)

func TestDefaultSettings(t *testing.T) {
	s := DefaultSettings()
	require.Equal(t, []string{"service", "namespace", "env", "app"}, s.MatchLabels)
	require.Equal(t, 30*time.Minute, s.Before)
	require.Equal(t, 10*time.Minute, s.After)
	require.Len(t, s.Signals, 3)
	lset := labels.FromStrings("service", "checkout", "env", "prod", "version", "v2")
	for _, sig := range s.Signals {
		require.Equal(t, judge.DirectionIncrease, sig.Direction)
		require.Equal(t, time.Minute, sig.Spacing(), "points one [1m] range apart")
		q, err := sig.render(lset, s.MatchLabels)
		require.NoError(t, err)
		require.Contains(t, q, `service="checkout",env="prod"`)
		require.NotContains(t, q, "version")
		_, err = parser.NewParser(parser.Options{}).ParseExpr(q)
		require.NoError(t, err, sig.Name)
	}
}

func TestSettingsCheck(t *testing.T) {
	cases := []struct {
		name string
		s    Settings
		err  string
	}{
		{
			name: "a query that does not parse names the signal and gives Prometheus's error",
			s:    Settings{Signals: []Signal{{Name: "errors", Query: `sum(rate(x{ {{.Matchers}} }[1m])`}}},
			err:  `signals[0] (errors).query: does not parse with service="example" as {{.Matchers}}: 1:37: parse error: unclosed left parenthesis; the query was: sum(rate(x{ service="example" }[1m])`,
		},
		{
			name: "a range vector is not a signal",
			s:    Settings{Signals: []Signal{{Name: "raw", Query: `x{ {{.Matchers}} }[5m]`}}},
			err:  `signals[0] (raw).query: is a range vector; accepted: an expression of instant vector or scalar type`,
		},
		{
			name: "a template that does not parse",
			s:    Settings{Signals: []Signal{{Name: "t", Query: `x{ {{.Matchers }`}}},
			err:  `signals[0] (t).query: not a template`,
		},
		{
			name: "no name",
			s:    Settings{Signals: []Signal{{Query: `up`}}},
			err:  `signals[0].name: missing`,
		},
		{
			name: "a name twice",
			s:    Settings{Signals: []Signal{{Name: "a", Query: `up`}, {Name: "a", Query: `up`}}},
			err:  `signals[1] (a).name: "a" is used twice`,
		},
		{
			name: "an allowed increase below 1",
			s:    Settings{Signals: []Signal{{Name: "a", Query: `up`, AllowedIncrease: 0.5}}},
			err:  `signals[0] (a).allowed_increase: 0.5 is not accepted`,
		},
		{
			name: "a bad match label",
			s:    Settings{MatchLabels: []string{"ok", "not-ok"}},
			err:  `match_labels[1]: "not-ok" is not accepted`,
		},
		{
			name: "min_after longer than after",
			s:    Settings{After: time.Minute, MinAfter: 2 * time.Minute},
			err:  `min_after: 2m is longer than after (1m)`,
		},
		{
			name: "confidence out of range",
			s:    Settings{Confidence: 1.5},
			err:  `confidence: 1.5 is not accepted`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.Check()
			require.Error(t, err)
			require.Contains(t, err.Error(), c.err)
		})
	}
}

func TestSignalSpacing(t *testing.T) {
	for q, want := range map[string]time.Duration{
		`up{ {{.Matchers}} }`: 15 * time.Second,
		`rate(x{ {{.Matchers}} }[5m]) / rate(y{ {{.Matchers}} }[2m])`: 5 * time.Minute,
		`max_over_time(rate(x{ {{.Matchers}} }[1m])[3m:15s])`:         3 * time.Minute,
		`rate(x{ {{.Matchers}} }[5s])`:                                15 * time.Second,
	} {
		s := Settings{Signals: []Signal{{Name: "s", Query: q}}}
		require.NoError(t, s.Check(), q)
		require.Equal(t, want, s.Signals[0].Spacing(), q)
	}
}

func TestScored(t *testing.T) {
	s := DefaultSettings()
	require.True(t, s.Scored(labels.FromStrings("service", "a")))
	require.True(t, s.Scored(labels.FromStrings("env", "prod", "x", "y")))
	require.False(t, s.Scored(labels.FromStrings("team", "a")))
	off := Settings{Signals: []Signal{}}
	require.NoError(t, off.Check())
	require.False(t, off.Scored(labels.FromStrings("service", "a")), "no signals: nothing is scored")
}

func TestMatchersEscape(t *testing.T) {
	require.Equal(t, `service="a\"b",env="x\\y"`, Matchers(labels.FromStrings("service", `a"b`, "env", `x\y`), []string{"service", "namespace", "env"}))
}
