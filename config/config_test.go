package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/state"
)

func TestParse(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "grafana"), []byte("  grafana-token-0123456789\n"), 0o600))
	c, err := Parse([]byte(`
organizations:
  - slug: acme
    tokens:
      - {name: grafana, scope: read, value_file: grafana}
      - {name: ci, scope: write, value: ci-token-0123456789}
  - slug: globex
`), dir)
	require.NoError(t, err)
	orgs, toks := c.StateTokens()
	require.Equal(t, []string{"acme", "globex"}, orgs)
	require.Equal(t, []state.ConfigToken{
		{Org: "acme", Name: "grafana", Scope: state.ScopeRead, Value: "grafana-token-0123456789"},
		{Org: "acme", Name: "ci", Scope: state.ScopeWrite, Value: "ci-token-0123456789"},
	}, toks)

	c, err = Parse(nil, dir)
	require.NoError(t, err)
	require.Empty(t, c.Organizations)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, errHas string }{
		{"unknown field", "organisations: []", "field organisations not found"},
		{"bad slug", "organizations: [{slug: Acme}]", `organizations[0].slug: organization slug "Acme" is not accepted`},
		{"duplicate org", "organizations: [{slug: a}, {slug: a}]", "declared twice"},
		{"bad scope", "organizations: [{slug: a, tokens: [{name: t, scope: root, value: 0123456789abcdef}]}]", `tokens[0].scope: scope "root" is not accepted`},
		{"short token", "organizations: [{slug: a, tokens: [{name: t, scope: read, value: short}]}]", "at least 16 characters"},
		{"no name", "organizations: [{slug: a, tokens: [{scope: read, value: 0123456789abcdef}]}]", "tokens[0].name: missing"},
		{"both value and file", "organizations: [{slug: a, tokens: [{name: t, scope: read, value: 0123456789abcdef, value_file: x}]}]", "both value and value_file"},
		{"missing file", "organizations: [{slug: a, tokens: [{name: t, scope: read, value_file: /nonexistent/token}]}]", "value_file"},
		{"same value twice", "organizations: [{slug: a, tokens: [{name: t, scope: read, value: 0123456789abcdef}, {name: u, scope: write, value: 0123456789abcdef}]}]", "distinct value per token"},
		{"not yaml", "organizations: [", "yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), t.TempDir())
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}

// FuzzParse: no config file content panics the loader.
func FuzzParse(f *testing.F) {
	f.Add([]byte("organizations: [{slug: a, tokens: [{name: t, scope: read, value: 0123456789abcdef}]}]"))
	f.Add([]byte("organizations:\n  - slug: x\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, t.TempDir())
		if err == nil {
			for _, o := range c.Organizations {
				for _, tok := range o.Tokens {
					_, err := state.ParseScope(tok.Scope)
					require.NoError(t, err)
					require.GreaterOrEqual(t, len(tok.Value), state.MinTokenLength)
				}
			}
		}
	})
}

func TestParseAlerting(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse([]byte(`
alerting:
  alertmanager_urls: ["http://am-0:9093", "https://user:pw@am.example/prefix"]
  webhook_urls: ["https://hooks.example/tidemark?token=x"]
  evaluation_interval: 30s
  for_grace_period: 1m
  rule_files:
    acme: ["rules/*.yml", "/etc/tidemark/acme.yml"]
  change_context:
    lookback: 1h
    match_labels: [service, cluster]
`), dir)
	require.NoError(t, err)
	a := c.Alerting
	require.Equal(t, []string{"http://am-0:9093", "https://user:pw@am.example/prefix"}, a.AlertmanagerURLs)
	require.Equal(t, model.Duration(30*time.Second), a.EvaluationInterval)
	require.Equal(t, model.Duration(time.Minute), a.ForGracePeriod)
	require.Equal(t, model.Duration(time.Minute), a.ResendDelay, "default")
	require.Equal(t, model.Duration(time.Hour), a.OutageTolerance, "default")
	require.Equal(t, []string{filepath.Join(dir, "rules/*.yml"), "/etc/tidemark/acme.yml"}, a.RuleFiles["acme"], "relative to the config file")
	require.Equal(t, model.Duration(time.Hour), a.ChangeContext.Lookback)
	require.Equal(t, []string{"service", "cluster"}, a.ChangeContext.MatchLabels)
	require.Equal(t, 10, a.ChangeContext.MaxEvents)

	// No section: the defaults, as with no config file.
	c, err = Parse([]byte("organizations: []\n"), dir)
	require.NoError(t, err)
	require.Equal(t, DefaultAlerting(), c.Alerting)
	d := DefaultAlerting()
	require.Equal(t, model.Duration(30*time.Minute), d.ChangeContext.Lookback)
	require.Equal(t, []string{"service", "namespace", "env", "app"}, d.ChangeContext.MatchLabels)
	require.Equal(t, model.Duration(10*time.Minute), d.ForGracePeriod)
	require.Equal(t, model.Duration(10*time.Second), d.SyncInterval)

	// match_labels: [] turns the context off.
	c, err = Parse([]byte("alerting: {change_context: {match_labels: []}}\n"), dir)
	require.NoError(t, err)
	require.Empty(t, c.Alerting.ChangeContext.MatchLabels)
	require.NotNil(t, c.Alerting.ChangeContext.MatchLabels)

	for _, tc := range []struct{ name, yaml, errHas string }{
		{"unknown field", "alerting: {alertmanagers: []}", "field alertmanagers not found"},
		{"bad alertmanager url", "alerting: {alertmanager_urls: ['am:9093']}", `alerting.alertmanager_urls[0]: "am:9093" is not accepted`},
		{"bad webhook url", "alerting: {webhook_urls: ['ftp://x']}", `alerting.webhook_urls[0]: "ftp://x" is not accepted`},
		{"bad external url", "alerting: {external_url: 'tidemark'}", `alerting.external_url: "tidemark" is not accepted`},
		{"bad match label", "alerting: {change_context: {match_labels: [service, 'k8s.app']}}", `alerting.change_context.match_labels[1]: "k8s.app" is not accepted`},
		{"negative max events", "alerting: {change_context: {max_events: -1}}", "alerting.change_context.max_events"},
		{"bad duration", "alerting: {change_context: {lookback: soon}}", "soon"},
		{"bad org", "alerting: {rule_files: {Acme: [x.yml]}}", `alerting.rule_files: organization slug "Acme" is not accepted`},
		{"bad pattern", "alerting: {rule_files: {acme: ['rules/[.yml']}}", `alerting.rule_files.acme[0]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), t.TempDir())
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}
