package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/internal/testservices"
	"github.com/tidemark/tidemark/internal/testutil"
	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/sources"
	"github.com/tidemark/tidemark/state"
)

// route is one request of the isolation matrix.
type matrixRoute struct {
	name   string
	method string
	path   string // under the base URL ("" for the org base, the root prefix otherwise)
	body   func(t *testing.T, org string) ([]byte, string)
	// header gives more request headers (a webhook's signature) for the
	// body of the token's organization.
	header func(body []byte, org string) map[string]string
	scope  state.Scope
	events bool // a change-event route: only under /api/v4/organizations/{org}
	root   bool // only at the root: the organization is the token's
}

func matrixRoutes() []matrixRoute {
	form := func(v string) func(*testing.T, string) ([]byte, string) {
		return func(*testing.T, string) ([]byte, string) { return []byte(v), "application/x-www-form-urlencoded" }
	}
	now := time.Now()
	return []matrixRoute{
		{name: "query GET", method: "GET", path: "/api/v1/query?query=up", scope: state.ScopeRead},
		{name: "query POST", method: "POST", path: "/api/v1/query", body: form("query=up"), scope: state.ScopeRead},
		{name: "query_range GET", method: "GET", path: "/api/v1/query_range?query=up&start=0&end=60&step=15", scope: state.ScopeRead},
		{name: "query_range POST", method: "POST", path: "/api/v1/query_range", body: form("query=up&start=0&end=60&step=15"), scope: state.ScopeRead},
		{name: "series GET", method: "GET", path: "/api/v1/series?match[]=up", scope: state.ScopeRead},
		{name: "series POST", method: "POST", path: "/api/v1/series", body: form("match[]=up"), scope: state.ScopeRead},
		{name: "labels GET", method: "GET", path: "/api/v1/labels", scope: state.ScopeRead},
		{name: "labels POST", method: "POST", path: "/api/v1/labels", body: form(""), scope: state.ScopeRead},
		{name: "label values", method: "GET", path: "/api/v1/label/__name__/values", scope: state.ScopeRead},
		{name: "metadata", method: "GET", path: "/api/v1/metadata", scope: state.ScopeRead},
		{name: "buildinfo", method: "GET", path: "/api/v1/status/buildinfo", scope: state.ScopeRead},
		{name: "rules", method: "GET", path: "/api/v1/rules", scope: state.ScopeRead},
		{name: "alerts", method: "GET", path: "/api/v1/alerts", scope: state.ScopeRead},
		{name: "query_exemplars GET", method: "GET", path: "/api/v1/query_exemplars?query=up", scope: state.ScopeRead},
		{name: "query_exemplars POST", method: "POST", path: "/api/v1/query_exemplars", body: form("query=up"), scope: state.ScopeRead},
		{name: "format_query GET", method: "GET", path: "/api/v1/format_query?query=up", scope: state.ScopeRead},
		{name: "format_query POST", method: "POST", path: "/api/v1/format_query", body: form("query=up"), scope: state.ScopeRead},
		{name: "parse_query GET", method: "GET", path: "/api/v1/parse_query?query=up", scope: state.ScopeRead},
		{name: "parse_query POST", method: "POST", path: "/api/v1/parse_query", body: form("query=up"), scope: state.ScopeRead},
		{name: "status tsdb", method: "GET", path: "/api/v1/status/tsdb", scope: state.ScopeRead},
		{name: "status flags", method: "GET", path: "/api/v1/status/flags", scope: state.ScopeRead},
		{name: "status runtimeinfo", method: "GET", path: "/api/v1/status/runtimeinfo", scope: state.ScopeRead},
		{name: "remote read", method: "POST", path: "/api/v1/read", scope: state.ScopeRead, body: func(t *testing.T, _ string) ([]byte, string) {
			return remoteReadRequest(t, "up"), "application/x-protobuf"
		}},
		{name: "federate", method: "GET", path: "/federate?match[]=up", scope: state.ScopeRead},
		{name: "remote write", method: "POST", path: "/api/v1/write", scope: state.ScopeWrite, body: func(t *testing.T, org string) ([]byte, string) {
			return testutil.EncodeV1(t, []testutil.Series{{Labels: labels.FromStrings("__name__", "matrix_written", "by", org), Samples: []testutil.Sample{{T: now.UnixMilli(), V: 1}}}}), "application/x-protobuf"
		}},
		{name: "otlp", method: "POST", path: "/api/v1/otlp/v1/metrics", scope: state.ScopeWrite, body: func(t *testing.T, org string) ([]byte, string) {
			return testutil.OTLPGauge(t, "svc", "matrix_otlp", map[string]string{"by": org}, now, 1), "application/x-protobuf"
		}},
		{name: "events PUT", method: "PUT", path: "/change_events", events: true, scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`{"event_name":"matrix-` + org + `","attributes":{"by":"` + org + `"}}`), "application/json"
		}},
		{name: "events POST", method: "POST", path: "/change_events", events: true, scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`[{"event_name":"matrix-` + org + `","event_state":"stop","attributes":{"by":"` + org + `"}}]`), "application/json"
		}},
		{name: "events GET", method: "GET", path: "/change_events", events: true, scope: state.ScopeRead},
		{name: "ruler POST group", method: "POST", path: "/config/v1/rules/matrix", scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte("name: g\nrules:\n  - record: matrix_rule_" + org + "\n    expr: vector(1)\n"), "application/yaml"
		}},
		{name: "ruler GET all", method: "GET", path: "/config/v1/rules", scope: state.ScopeRead},
		{name: "ruler GET namespace", method: "GET", path: "/config/v1/rules/matrix", scope: state.ScopeRead},
		{name: "ruler GET group", method: "GET", path: "/config/v1/rules/matrix/g", scope: state.ScopeRead},
		{name: "analysis POST", method: "POST", path: "/analysis", events: true, scope: state.ScopeRead, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`{"window":{"start":"now-10m","end":"now"},"record":false,"metrics":[{"name":"m","canary":"vector(1)","baseline":"vector(1)"}]}`), "application/json"
		}},
		{name: "analysis GET", method: "GET", path: "/analysis?start=now-10m&end=now&name=m&canary=vector(1)&baseline=vector(1)&record=false", events: true, scope: state.ScopeRead},
		{name: "tokens GET", method: "GET", path: "/tokens", events: true, scope: state.ScopeAdmin},
		{name: "tokens POST", method: "POST", path: "/tokens", events: true, scope: state.ScopeAdmin, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`{"name":"matrix-` + org + `-` + strings.TrimPrefix(state.NewToken(), "tdm_")[:12] + `","scope":"read"}`), "application/json"
		}},
		{name: "annotations POST", method: "POST", path: "/api/annotations", root: true, scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`{"tags":["matrix-` + org + `","by:` + org + `"]}`), "application/json"
		}},
		{name: "annotations GET", method: "GET", path: "/api/annotations", root: true, scope: state.ScopeRead},
		{name: "flagger hook", method: "POST", path: "/hooks/flagger", events: true, scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`{"name":"matrix-` + org + `","namespace":"` + org + `","phase":"Progressing","metadata":{}}`), "application/json"
		}},
		{name: "argo rollouts hook", method: "POST", path: "/hooks/argo-rollouts", events: true, scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`{"rollout":"matrix-` + org + `","namespace":"` + org + `","trigger":"on-rollout-updated","phase":"Progressing"}`), "application/json"
		}},
		{name: "github hook", method: "POST", path: "/hooks/github", events: true, scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`{"action":"created","deployment":{"id":7,"task":"matrix-` + org + `","environment":"` + org + `"},"repository":{"name":"matrix-` + org + `"}}`), "application/json"
		}, header: func(body []byte, org string) map[string]string {
			return map[string]string{"X-GitHub-Event": "deployment", "X-Hub-Signature-256": "sha256=" + sources.SignHMAC(body, "gh-"+org)}
		}},
		{name: "gitlab hook", method: "POST", path: "/hooks/gitlab", events: true, scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`{"object_kind":"deployment","status":"running","deployment_id":7,"environment":"` + org + `","project":{"name":"matrix-` + org + `"}}`), "application/json"
		}, header: func(_ []byte, org string) map[string]string {
			return map[string]string{"X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Token": "gl-" + org}
		}},
		{name: "launchdarkly hook", method: "POST", path: "/hooks/launchdarkly", events: true, scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`{"_id":"matrix","kind":"flag","accesses":[{"action":"updateOn","resource":"proj/matrix:env/` + org + `:flag/matrix-` + org + `"}]}`), "application/json"
		}, header: func(body []byte, org string) map[string]string {
			return map[string]string{"X-LD-Signature": sources.SignHMAC(body, "ld-"+org)}
		}},
		{name: "unleash hook", method: "POST", path: "/hooks/unleash", events: true, scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(`{"id":7,"type":"feature-environment-enabled","featureName":"matrix-` + org + `","project":"matrix","environment":"` + org + `"}`), "application/json"
		}},
		{name: "generic hook", method: "POST", path: "/hooks/generic/split", events: true, scope: state.ScopeWrite, body: func(_ *testing.T, org string) ([]byte, string) {
			return []byte(fmt.Sprintf(`{"name":"matrix-%s","environmentName":"%s","changeNumber":7,"time":%d}`, org, org, now.UnixMilli())), "application/json"
		}},
	}
}

// remoteReadRequest is a snappy-compressed remote read request for the
// series of one metric in the last hour, as Prometheus's remote_read sends.
func remoteReadRequest(t *testing.T, metric string) []byte {
	now := time.Now().UnixMilli()
	req := prompb.ReadRequest{Queries: []*prompb.Query{{
		StartTimestampMs: now - 3600_000, EndTimestampMs: now,
		Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: metric}},
	}}}
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

func do(t *testing.T, method, u, token string, body []byte, ctype string) (int, []byte) {
	return doWith(t, method, u, token, body, ctype, nil)
}

// doWith is do with more request headers.
func doWith(t *testing.T, method, u, token string, body []byte, ctype string, header map[string]string) (int, []byte) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if strings.Contains(ctype, "protobuf") && strings.HasSuffix(u, "/write") {
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestIsolationMatrix: two organizations x three scopes x every route, under
// the organization's own base URL, the other organization's, and the root.
func TestIsolationMatrix(t *testing.T) {
	isolationMatrix(t, newTestStack(t, withTestHooks(t)))
}

// TestIsolationMatrixRemote is the matrix with the samples in a real Cortex
// (each organization its tenant) and the state in PostgreSQL; and in
// Cortex, each tenant holds only its organization's series.
func TestIsolationMatrixRemote(t *testing.T) {
	engine := testservices.Cortex(t)
	pg := testservices.Postgres(t)
	st := newTestStack(t, withTestHooks(t), func(o *server.Options) {
		o.Storage, o.StateURL = server.StorageRemote, pg
		o.Remote.WriteURL, o.Remote.QueryURL = engine.PushURL, engine.QueryURL
	})
	isolationMatrix(t, st)
	for _, org := range testOrgs {
		c, err := api.NewClient(api.Config{Address: engine.QueryURL, RoundTripper: testservices.TenantRoundTripper(org, nil)})
		require.NoError(t, err)
		v, _, _, err := promv1.NewAPI(c).Query(context.Background(), `{__name__=~"matrix_.*"}`, time.Now())
		require.NoError(t, err)
		require.NotEmpty(t, v.(model.Vector))
		for _, s := range v.(model.Vector) {
			require.Equal(t, model.LabelValue(org), s.Metric["by"], "tenant %s holds %s", org, s.Metric)
		}
	}
}

func isolationMatrix(t *testing.T, st *testStack) {
	for _, rt := range matrixRoutes() {
		for _, tokOrg := range testOrgs {
			for _, scope := range []state.Scope{state.ScopeRead, state.ScopeWrite, state.ScopeAdmin} {
				for _, pathOrg := range append([]string{""}, testOrgs...) {
					if (rt.events && pathOrg == "") || (rt.root && pathOrg != "") {
						continue
					}
					name := fmt.Sprintf("%s/token=%s-%s/path=%s", rt.name, tokOrg, scope, pathOrg)
					t.Run(name, func(t *testing.T) {
						u := st.url + rt.path
						switch {
						case rt.events:
							u = st.url + "/api/v4/organizations/" + pathOrg + rt.path
						case pathOrg != "":
							u = st.url + "/api/v4/organizations/" + pathOrg + "/prometheus" + rt.path
						}
						var body []byte
						var ctype string
						var header map[string]string
						if rt.body != nil {
							body, ctype = rt.body(t, tokOrg)
						}
						if rt.header != nil {
							header = rt.header(body, tokOrg)
						}
						code, resp := doWith(t, rt.method, u, st.tokens[tokOrg][scope], body, ctype, header)
						switch {
						case pathOrg != "" && pathOrg != tokOrg:
							require.Equal(t, http.StatusForbidden, code, "%s", resp)
							require.Contains(t, string(resp), "cannot access organization")
						case !scope.Allows(rt.scope):
							require.Equal(t, http.StatusForbidden, code, "%s", resp)
							require.Contains(t, string(resp), "needs scope")
						default:
							require.True(t, code >= 200 && code < 300, "status %d: %s", code, resp)
						}
					})
				}
			}
		}
	}

	// What each organization wrote is visible to it only, under every base URL.
	for _, org := range testOrgs {
		other := testOrgs[0]
		if org == other {
			other = testOrgs[1]
		}
		tok := st.tokens[org][state.ScopeRead]
		for _, base := range []string{st.url, st.url + "/api/v4/organizations/" + org + "/prometheus"} {
			for _, q := range []string{"matrix_written", "matrix_otlp", "change_events"} {
				code, resp := do(t, "GET", base+"/api/v1/query?query="+url.QueryEscape(q), tok, nil, "")
				require.Equal(t, 200, code, "%s", resp)
				require.Contains(t, string(resp), `"`+org+`"`, "query %s for %s at %s: %s", q, org, base, resp)
				require.NotContains(t, string(resp), `"`+other+`"`, "query %s for %s at %s: %s", q, org, base, resp)
			}
			code, resp := do(t, "GET", base+"/api/v1/label/by/values", tok, nil, "")
			require.Equal(t, 200, code)
			require.JSONEq(t, `{"status":"success","data":["`+org+`"]}`, string(resp))
		}
		evs := listEvents(t, st, org, client.ListQuery{})
		require.NotEmpty(t, evs)
		for _, e := range evs {
			// Every event is the organization's own: named after it, or,
			// when its source names it (deploy, flag-change), labelled.
			own := strings.HasPrefix(e.Name, "matrix-"+org)
			for _, v := range e.Labels {
				own = own || strings.HasPrefix(v, "matrix-"+org)
			}
			require.True(t, own, "%s sees %s %v", org, e.Name, e.Labels)
		}
		code, resp := do(t, "GET", st.url+"/api/v4/organizations/"+org+"/prometheus/config/v1/rules", tok, nil, "")
		require.Equal(t, 200, code)
		require.Contains(t, string(resp), "matrix_rule_"+org)
		require.NotContains(t, string(resp), "matrix_rule_"+other)
		code, resp = do(t, "GET", st.url+"/api/annotations", tok, nil, "")
		require.Equal(t, 200, code)
		require.Contains(t, string(resp), "matrix-"+org)
		require.NotContains(t, string(resp), "matrix-"+other)
	}
}

func TestAuthErrors(t *testing.T) {
	st := newTestStack(t)
	tok := st.tokens["acme"][state.ScopeAdmin]
	for _, tc := range []struct {
		name, method, path, token string
		code                      int
		body                      string
	}{
		{"no token, prometheus shape", "GET", "/api/v1/query?query=up", "", 401, `{"status":"error","errorType":"unauthorized","error":"no credentials: send the token as 'Authorization: Bearer <token>', as 'X-LAST9-API-TOKEN: Bearer <token>', or as the password of HTTP basic auth"}`},
		{"wrong token", "GET", "/api/v4/organizations/acme/prometheus/api/v1/query?query=up", "tdm_wrong", 401, `{"status":"error","errorType":"unauthorized","error":"the token is not valid (unknown or removed)"}`},
		{"wrong token, events shape", "GET", "/api/v4/organizations/acme/change_events", "tdm_wrong", 401, `{"error":"the token is not valid (unknown or removed)"}`},
		{"unknown organization", "GET", "/api/v4/organizations/initech/prometheus/api/v1/query?query=up", tok, 404, `{"status":"error","errorType":"not_found","error":"organization \"initech\" not found"}`},
		{"invalid organization slug", "GET", "/api/v4/organizations/..%2F..%2Fetc/change_events", tok, 404, `{"error":"organization \"../../etc\" not found"}`},
		{"other organization", "PUT", "/api/v4/organizations/globex/change_events", tok, 403, `{"error":"the token belongs to organization \"acme\" and cannot access organization \"globex\""}`},
		{"bad query", "GET", "/api/v1/query?query=" + url.QueryEscape("sum(up) or 0.99"), tok, 400, `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:1: parse error: set operator \"or\" not allowed in binary scalar expression"}`},
		{"no route", "GET", "/api/v2/nothing", tok, 404, `{"error":"no route for GET /api/v2/nothing"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := do(t, tc.method, st.url+tc.path, tc.token, nil, "")
			require.Equal(t, tc.code, code, "%s", resp)
			require.JSONEq(t, tc.body, string(resp))
		})
	}
}
