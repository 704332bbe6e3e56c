package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/impact"
	"github.com/tidemark/tidemark/judge"
)

func TestImpact(t *testing.T) {
	c, err := Parse([]byte(`
impact:
  before: 20m
  signals:
    - name: error-ratio
      query: 'sum(rate(errors_total{ {{.Matchers}} }[1m])) / sum(rate(requests_total{ {{.Matchers}} }[1m]))'
      direction: increase
    - name: throughput
      query: 'sum(rate(requests_total{ {{.Matchers}} }[1m]))'
      direction: decrease
      allowed_decrease: 0.5
organizations:
  - slug: acme
    impact:
      match_labels: [app]
      after: 15m
  - slug: quiet
    impact:
      signals: []
  - slug: globex
`), t.TempDir())
	require.NoError(t, err)

	top := c.ImpactSettings("globex")
	require.Equal(t, 20*time.Minute, top.Before)
	require.Equal(t, 10*time.Minute, top.After, "a default")
	require.Equal(t, []string{"service", "namespace", "env", "app"}, top.MatchLabels)
	require.Len(t, top.Signals, 2)
	require.Equal(t, judge.DirectionDecrease, top.Signals[1].Direction)
	require.Equal(t, 0.5, top.Signals[1].AllowedDecrease)

	acme := c.ImpactSettings("acme")
	require.Equal(t, []string{"app"}, acme.MatchLabels)
	require.Equal(t, 20*time.Minute, acme.Before, "from the top level")
	require.Equal(t, 15*time.Minute, acme.After)
	require.Len(t, acme.Signals, 2, "from the top level")

	require.Empty(t, c.ImpactSettings("quiet").Signals, "scoring off")

	def, err := Parse(nil, "")
	require.NoError(t, err)
	require.Len(t, def.ImpactSettings("any").Signals, 3, "the default signals")
	require.Len(t, (&Config{}).ImpactSettings("any").Signals, 3)
}

func TestImpactErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, errHas string }{
		{"a query that does not parse", `
impact:
  signals: [{name: latency, query: 'histogram_quantile(0.99, rate(x{ {{.Matchers}} }[1m])'}]`,
			`impact.signals[0] (latency).query: does not parse with service="example" as {{.Matchers}}: 1:58: parse error: unclosed left parenthesis; the query was: histogram_quantile(0.99, rate(x{ service="example" }[1m])`},
		{"in an organization", `
organizations:
  - slug: acme
    impact:
      signals: [{name: errors, query: 'sum(x{ {{.Matchers}} }'}]`,
			`organizations[0] (acme) impact.signals[0] (errors).query: does not parse`},
		{"a bad direction", `
impact:
  signals: [{name: errors, query: 'x', direction: up}]`,
			`impact.signals[0] (errors).direction: "up" is not accepted; accepted: increase, decrease or either`},
		{"an unknown field", `
impact:
  windw: 5m`, "field windw not found"},
		{"a bad duration", `
impact:
  min_after: 20m`, "impact.min_after: 20m is longer than after (10m)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), t.TempDir())
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}

// TestImpactDocs: the configuration docs/impact.md shows is the defaults,
// and its example error is the one the loader gives.
func TestImpactDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/impact.md")
	require.NoError(t, err)
	doc := string(b)
	m := regexp.MustCompile("(?s)```yaml\n(impact:.*?)```").FindStringSubmatch(doc)
	require.NotNil(t, m, "the impact: block")
	c, err := Parse([]byte(m[1]), t.TempDir())
	require.NoError(t, err)
	got, def := c.ImpactSettings("any"), impact.DefaultSettings()
	require.Equal(t, def.MatchLabels, got.MatchLabels)
	require.Equal(t, []time.Duration{def.Before, def.After, def.MinAfter, def.Step, def.Delay}, []time.Duration{got.Before, got.After, got.MinAfter, got.Step, got.Delay})
	require.Equal(t, def.Confidence, got.Confidence)
	require.Equal(t, def.MinPoints, got.MinPoints)
	require.Len(t, got.Signals, len(def.Signals))
	for i, s := range got.Signals {
		require.Equal(t, def.Signals[i].Name, s.Name)
		require.Equal(t, strings.TrimSpace(def.Signals[i].Query), strings.TrimSpace(s.Query), s.Name)
		require.Equal(t, def.Signals[i].Direction, s.Direction)
	}

	_, err = Parse([]byte("impact:\n  signals: [{name: latency, query: 'histogram_quantile(0.99, rate(x{ {{.Matchers}} }[1m])'}]\n"), "")
	require.Error(t, err)
	require.Contains(t, doc, "config file tidemark.yml: "+err.Error()+"\n")
}
