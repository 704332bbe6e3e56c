package config

import (
	"os"
	"path/filepath"
	"testing"

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
