package web_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tidemark/tidemark/alerting"
	"github.com/tidemark/tidemark/state"
)

// newRulesTestStack is newTestStack and its rules manager. Tests call its
// Sync instead of waiting for the sync interval.
func newRulesTestStack(t *testing.T) (*testStack, *alerting.Manager) {
	st := newTestStack(t)
	return st, st.rules
}

const canaryGroup = `name: checkout
interval: 30s
rules:
  - alert: CheckoutCanaryErrors
    expr: |
      sum by (service) (rate(http_requests_total{service="checkout",track="canary",code=~"5.."}[1m]))
        / sum by (service) (rate(http_requests_total{service="checkout",track="canary"}[1m])) > 0.05
    for: 2m
    keep_firing_for: 5m
    labels:
      severity: page
    annotations:
      summary: 'Canary error ratio is {{ $value | humanizePercentage }}'
  - record: service:http_requests:rate1m
    expr: sum by (service) (rate(http_requests_total[1m]))
`

func orgRules(st *testStack, org string) string {
	return st.url + "/api/v4/organizations/" + org + "/prometheus/config/v1/rules"
}

func yamlDoc(t *testing.T, b []byte) any {
	var v any
	require.NoError(t, yaml.Unmarshal(b, &v), "%s", b)
	return v
}

func TestRulerAPI(t *testing.T) {
	st, _ := newRulesTestStack(t)
	rtok, wtok := st.tokens["acme"][state.ScopeRead], st.tokens["acme"][state.ScopeWrite]
	base := orgRules(st, "acme")

	// Nothing yet: Mimir's 404.
	code, resp := do(t, "GET", base, rtok, nil, "")
	require.Equal(t, 404, code, "%s", resp)
	require.Contains(t, string(resp), "no rule groups found")

	// Create.
	code, resp = do(t, "POST", base+"/canary", wtok, []byte(canaryGroup), "application/yaml")
	require.Equal(t, 202, code, "%s", resp)
	require.JSONEq(t, `{"status":"success","data":null,"errorType":"","error":""}`, string(resp))

	// Read the group back: the same group, in canonical YAML.
	code, resp = do(t, "GET", base+"/canary/checkout", rtok, nil, "")
	require.Equal(t, 200, code, "%s", resp)
	require.Equal(t, yamlDoc(t, []byte(canaryGroup)), yamlDoc(t, resp))

	// Another namespace, through the root base URL (organization from the token).
	other := "name: latency\nrules:\n  - record: job:latency:p99\n    expr: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))\n"
	code, resp = do(t, "POST", st.url+"/config/v1/rules/team%2Fpayments", wtok, []byte(other), "application/yaml")
	require.Equal(t, 202, code, "%s", resp)

	// List: namespace -> groups.
	code, resp = do(t, "GET", base, rtok, nil, "")
	require.Equal(t, 200, code, "%s", resp)
	var all map[string][]map[string]any
	require.NoError(t, yaml.Unmarshal(resp, &all), "%s", resp)
	require.Len(t, all, 2)
	require.Equal(t, "checkout", all["canary"][0]["name"])
	require.Equal(t, "latency", all["team/payments"][0]["name"])
	code, resp = do(t, "GET", st.url+"/config/v1/rules/canary", rtok, nil, "")
	require.Equal(t, 200, code, "%s", resp)
	var one map[string][]map[string]any
	require.NoError(t, yaml.Unmarshal(resp, &one))
	require.Len(t, one, 1)
	require.Len(t, one["canary"], 1)

	// Replace: the same name in the same namespace.
	replaced := strings.Replace(canaryGroup, "for: 2m", "for: 10m", 1)
	code, resp = do(t, "POST", base+"/canary", wtok, []byte(replaced), "application/yaml")
	require.Equal(t, 202, code, "%s", resp)
	code, resp = do(t, "GET", base+"/canary/checkout", rtok, nil, "")
	require.Equal(t, 200, code, "%s", resp)
	require.Contains(t, string(resp), "for: 10m")
	code, resp = do(t, "GET", base+"/canary", rtok, nil, "")
	require.Equal(t, 200, code)
	require.NoError(t, yaml.Unmarshal(resp, &one))
	require.Len(t, one["canary"], 1, "a replace does not add a group")

	// Delete a group; then the namespace.
	code, resp = do(t, "DELETE", base+"/canary/checkout", wtok, nil, "")
	require.Equal(t, 202, code, "%s", resp)
	code, resp = do(t, "GET", base+"/canary/checkout", rtok, nil, "")
	require.Equal(t, 404, code)
	require.Contains(t, string(resp), "group does not exist")
	code, _ = do(t, "DELETE", base+"/canary/checkout", wtok, nil, "")
	require.Equal(t, 404, code)
	code, resp = do(t, "DELETE", base+"/team%2Fpayments", wtok, nil, "")
	require.Equal(t, 202, code, "%s", resp)
	code, resp = do(t, "DELETE", base+"/team%2Fpayments", wtok, nil, "")
	require.Equal(t, 404, code)
	require.Contains(t, string(resp), "group namespace does not exist")
	code, _ = do(t, "GET", base, rtok, nil, "")
	require.Equal(t, 404, code)

	// Scopes: reading needs read, changing needs write.
	code, resp = do(t, "POST", base+"/canary", rtok, []byte(canaryGroup), "application/yaml")
	require.Equal(t, 403, code, "%s", resp)
	code, _ = do(t, "DELETE", base+"/canary", rtok, nil, "")
	require.Equal(t, 403, code)
	code, _ = do(t, "GET", base, "", nil, "")
	require.Equal(t, 401, code)
}

func TestRulerAPIBadGroups(t *testing.T) {
	st, _ := newRulesTestStack(t)
	wtok := st.tokens["acme"][state.ScopeWrite]
	for _, tc := range []struct {
		name string
		body string
		has  []string
	}{
		{"bad expression", "name: g1\nrules:\n  - alert: Fine\n    expr: up == 0\n  - alert: Broken\n    expr: sum(rate(x[5m])\n",
			[]string{`rule group "g1", rule 2 (Broken)`, "parse error"}},
		{"neither alert nor record", "name: g2\nrules:\n  - expr: up\n", []string{`rule group "g2", rule 1`, "one of 'record' or 'alert' must be set"}},
		{"bad template", "name: g3\nrules:\n  - alert: T\n    expr: up\n    annotations:\n      summary: '{{ $value | nosuchfunc }}'\n",
			[]string{`rule group "g3", rule 1 (T)`, `annotation "summary"`}},
		{"bad record name", "name: g4\nrules:\n  - record: 'not a metric{'\n    expr: up\n", []string{`rule group "g4", rule 1`, "braces present in the recording rule name"}},
		{"unknown field", "name: g5\nrulez: []\n", []string{"not one Prometheus rule group", "rulez"}},
		{"no name", "rules:\n  - record: a\n    expr: up\n", []string{"no name"}},
		{"not yaml", "{", []string{"not one Prometheus rule group"}},
		{"empty", "", []string{"empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := do(t, "POST", orgRules(st, "acme")+"/ns", wtok, []byte(tc.body), "application/yaml")
			require.Equal(t, 400, code, "%s", resp)
			var e struct{ Status, ErrorType, Error string }
			require.NoError(t, json.Unmarshal(resp, &e))
			require.Equal(t, "error", e.Status)
			require.Equal(t, "bad_data", e.ErrorType)
			for _, s := range tc.has {
				require.Contains(t, e.Error, s)
			}
		})
	}
	code, _ := do(t, "GET", orgRules(st, "acme"), st.tokens["acme"][state.ScopeRead], nil, "")
	require.Equal(t, 404, code, "nothing of a bad request is stored")
}

func TestRulerAPIIsolation(t *testing.T) {
	st, am := newRulesTestStack(t)
	acmeW, globexW := st.tokens["acme"][state.ScopeWrite], st.tokens["globex"][state.ScopeWrite]
	code, resp := do(t, "POST", orgRules(st, "acme")+"/canary", acmeW, []byte(canaryGroup), "application/yaml")
	require.Equal(t, 202, code, "%s", resp)
	code, resp = do(t, "POST", orgRules(st, "globex")+"/canary", globexW, []byte("name: other\nrules:\n  - record: x:up\n    expr: up\n"), "application/yaml")
	require.Equal(t, 202, code, "%s", resp)

	// Another organization's token cannot read or change acme's rules.
	for _, tc := range []struct{ method, path string }{
		{"GET", ""}, {"GET", "/canary"}, {"GET", "/canary/checkout"},
		{"POST", "/canary"}, {"DELETE", "/canary/checkout"}, {"DELETE", "/canary"},
	} {
		code, resp := do(t, tc.method, orgRules(st, "acme")+tc.path, st.tokens["globex"][state.ScopeAdmin], []byte(canaryGroup), "application/yaml")
		require.Equal(t, 403, code, "%s %s: %s", tc.method, tc.path, resp)
	}
	code, _ = do(t, "GET", orgRules(st, "initech"), acmeW, nil, "")
	require.Equal(t, 404, code, "an organization that does not exist")

	// At the root, each token sees its own organization's groups.
	for org, group := range map[string]string{"acme": "checkout", "globex": "other"} {
		code, resp := do(t, "GET", st.url+"/config/v1/rules", st.tokens[org][state.ScopeRead], nil, "")
		require.Equal(t, 200, code, "%s", resp)
		var all map[string][]map[string]any
		require.NoError(t, yaml.Unmarshal(resp, &all))
		require.Len(t, all["canary"], 1)
		require.Equal(t, group, all["canary"][0]["name"], org)
	}
	// The same namespace and group name in two organizations are two groups.
	code, _ = do(t, "POST", orgRules(st, "globex")+"/canary", globexW, []byte(canaryGroup), "application/yaml")
	require.Equal(t, 202, code)
	code, _ = do(t, "DELETE", orgRules(st, "globex")+"/canary/checkout", globexW, nil, "")
	require.Equal(t, 202, code)
	code, _ = do(t, "GET", orgRules(st, "acme")+"/canary/checkout", st.tokens["acme"][state.ScopeRead], nil, "")
	require.Equal(t, 200, code, "globex's delete left acme's group alone")

	// Prometheus's /api/v1/rules answers per organization once loaded.
	require.NoError(t, am.Sync(context.Background()))
	for org, want := range map[string][]string{"acme": {"CheckoutCanaryErrors", "service:http_requests:rate1m"}, "globex": {"x:up"}} {
		code, resp := do(t, "GET", st.url+"/api/v4/organizations/"+org+"/prometheus/api/v1/rules", st.tokens[org][state.ScopeRead], nil, "")
		require.Equal(t, 200, code, "%s", resp)
		var rr struct {
			Status string
			Data   struct {
				Groups []struct {
					Name, File string
					Interval   float64
					Rules      []struct {
						Name, Type, Health string
						Duration           float64
						KeepFiringFor      float64 `json:"keepFiringFor"`
						Labels             map[string]string
					}
				}
			}
		}
		require.NoError(t, json.Unmarshal(resp, &rr), "%s", resp)
		require.Equal(t, "success", rr.Status)
		require.Len(t, rr.Data.Groups, 1, "%s", resp)
		g := rr.Data.Groups[0]
		require.Equal(t, "canary", g.File)
		var names []string
		for _, r := range g.Rules {
			names = append(names, r.Name)
		}
		require.Equal(t, want, names)
		if org == "acme" {
			require.Equal(t, "checkout", g.Name)
			require.Equal(t, 30.0, g.Interval)
			require.Equal(t, "alerting", g.Rules[0].Type)
			require.Equal(t, 120.0, g.Rules[0].Duration)
			require.Equal(t, 300.0, g.Rules[0].KeepFiringFor)
			require.Equal(t, map[string]string{"severity": "page"}, g.Rules[0].Labels)
			require.Equal(t, "recording", g.Rules[1].Type)
		}
	}
	// A deleted namespace is unloaded at the next sync.
	code, _ = do(t, "DELETE", orgRules(st, "globex")+"/canary", globexW, nil, "")
	require.Equal(t, 202, code)
	require.NoError(t, am.Sync(context.Background()))
	code, resp = do(t, "GET", st.url+"/api/v1/rules", st.tokens["globex"][state.ScopeRead], nil, "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"status":"success","data":{"groups":[]}}`, string(resp))
}
