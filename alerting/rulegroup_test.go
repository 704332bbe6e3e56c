package alerting

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tidemark/tidemark/state"
)

func TestParseGroup(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	rg, err := ParseGroup([]byte(`
name: checkout
interval: 15s
labels: {team: payments}
rules:
  - alert: CheckoutErrors
    expr: sum(rate(errors_total[5m])) > 1
    for: 2m
    keep_firing_for: 5m
    labels: {severity: page}
    annotations: {summary: '{{ $value }} errors/s'}
  - record: job:errors:rate5m
    expr: sum by (job) (rate(errors_total[5m]))
`), p)
	require.NoError(t, err)
	require.Equal(t, "checkout", rg.Name)
	require.Equal(t, model.Duration(15*time.Second), rg.Interval)
	require.Len(t, rg.Rules, 2)
	require.Equal(t, model.Duration(5*time.Minute), rg.Rules[0].KeepFiringFor)

	// The stored form parses back to the same group.
	b, err := FormatGroup(rg)
	require.NoError(t, err)
	back, err := ParseGroup(b, p)
	require.NoError(t, err)
	require.Equal(t, rg, back)

	for _, tc := range []struct{ name, body, want string }{
		{"bad expr", "name: g\nrules:\n  - alert: A\n    expr: up ==\n", `rule group "g", rule 1 (A): could not parse expression`},
		{"second rule", "name: g\nrules:\n  - record: a\n    expr: up\n  - record: b\n    expr: 'rate(up)'\n", `rule group "g", rule 2 (b):`},
		{"both alert and record", "name: g\nrules:\n  - alert: A\n    record: b\n    expr: up\n", `rule group "g", rule 1 (A): only one of 'record' and 'alert' must be set`},
		{"for on a record", "name: g\nrules:\n  - record: a\n    expr: up\n    for: 1m\n", `rule group "g", rule 1 (a): invalid field 'for' in recording rule`},
		{"template", "name: g\nrules:\n  - alert: A\n    expr: up\n    labels: {x: '{{ .Nope'}\n", `rule group "g", rule 1 (A): label "x"`},
		{"no expr", "name: g\nrules:\n  - alert: A\n", `rule group "g", rule 1 (A): field 'expr' must be set in rule`},
		{"two documents", "name: g\nrules: []\n---\nname: h\n", "more than one YAML document"},
		{"a rule file instead of a group", "groups:\n  - name: g\n", "field groups not found"},
		{"blank name", "name: ' '\nrules: []\n", "no name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseGroup([]byte(tc.body), p)
			var ge *GroupError
			require.True(t, errors.As(err, &ge), "%v", err)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestFormatNamespaces(t *testing.T) {
	rows := []state.RuleGroupRow{
		{Namespace: "b", Name: "g2", Body: "name: g2\nrules:\n  - record: x\n    expr: up\n"},
		{Namespace: "a", Name: "g1", Body: "name: g1\ninterval: 1m\nrules: []\n"},
		{Namespace: "b", Name: "g3", Body: "name: g3\nrules: []\n"},
	}
	b, err := FormatNamespaces(rows)
	require.NoError(t, err)
	var got map[string][]map[string]any
	require.NoError(t, yaml.Unmarshal(b, &got))
	require.Equal(t, map[string][]map[string]any{
		"a": {{"name": "g1", "interval": "1m", "rules": []any{}}},
		"b": {{"name": "g2", "rules": []any{map[string]any{"record": "x", "expr": "up"}}}, {"name": "g3", "rules": []any{}}},
	}, got)
}

// FuzzParseGroup: no request body panics the ruler API's parser, and a
// group it accepts survives its stored form.
func FuzzParseGroup(f *testing.F) {
	f.Add([]byte("name: g\nrules:\n  - alert: A\n    expr: up == 0\n    for: 1m\n"))
	f.Add([]byte("name: g\nrules:\n  - record: a:b\n    expr: sum(rate(x[5m]))\n"))
	f.Add([]byte("{"))
	f.Add([]byte("name: g\nrules: [{alert: A, expr: 'up', annotations: {s: '{{ $value }}'}}]\n"))
	p := parser.NewParser(parser.Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rg, err := ParseGroup(b, p)
		if err != nil {
			return
		}
		out, err := FormatGroup(rg)
		require.NoError(t, err)
		_, err = ParseGroup(out, p)
		require.NoError(t, err, "stored form of %q:\n%s", b, out)
	})
}
