package web_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/impact/scenario"
	"github.com/tidemark/tidemark/internal/testutil"
	"github.com/tidemark/tidemark/state"
)

// writeScenario remote-writes a scenario's series and writes its events.
func writeScenario(t *testing.T, st *testStack, org string, sc *scenario.Scenario) {
	var series []testutil.Series
	for _, s := range sc.Series() {
		ts := testutil.Series{Labels: s.Labels}
		for _, p := range s.Samples {
			ts.Samples = append(ts.Samples, testutil.Sample{T: p.T, V: p.V})
		}
		series = append(series, ts)
	}
	code, resp := do(t, "POST", st.url+"/api/v4/organizations/"+org+"/prometheus/api/v1/write", st.tokens[org][state.ScopeWrite], testutil.EncodeV1(t, series), "application/x-protobuf")
	require.Equal(t, 204, code, "%s", resp)
	body, err := json.Marshal(sc.Events())
	require.NoError(t, err)
	code, resp = do(t, "POST", st.url+"/api/v4/organizations/"+org+"/change_events", st.tokens[org][state.ScopeWrite], body, "application/json")
	require.Equal(t, 200, code, "%s", resp)
}

type impactAnswer struct {
	EventID string `json:"event_id"`
	Impact  struct {
		Verdict     string   `json:"verdict"`
		ScoredAt    string   `json:"scored_at"`
		Score       *float64 `json:"score"`
		Provisional bool     `json:"provisional"`
		Signals     []struct {
			Name           string   `json:"name"`
			Classification string   `json:"classification"`
			PValue         *float64 `json:"p_value"`
			Before         *float64 `json:"before"`
			After          *float64 `json:"after"`
			Effect         *float64 `json:"effect"`
		} `json:"signals"`
	} `json:"impact"`
}

// TestImpactRoutes: POST .../impact scores an event on demand; GET
// .../change_events/{id} and the listing carry the stored impact; errors
// name what is wrong; another organization's events are not found.
func TestImpactRoutes(t *testing.T) {
	st := newTestStack(t)
	end := time.Now().Truncate(time.Second)
	sc := scenario.Mixed(5, end)
	writeScenario(t, st, "acme", sc)
	base := st.url + "/api/v4/organizations/acme"
	wtok, rtok := st.tokens["acme"][state.ScopeWrite], st.tokens["acme"][state.ScopeRead]
	bad := sc.EventID(scenario.MixedCheckoutV2)

	code, resp := do(t, "POST", base+"/impact", wtok, []byte(`{"event_id":"`+bad+`"}`), "application/json")
	require.Equal(t, 200, code, "%s", resp)
	var ans impactAnswer
	require.NoError(t, json.Unmarshal(resp, &ans))
	require.Equal(t, bad, ans.EventID)
	require.Equal(t, "degraded", ans.Impact.Verdict)
	require.False(t, ans.Impact.Provisional)
	require.Len(t, ans.Impact.Signals, 3)
	require.Equal(t, "error-ratio", ans.Impact.Signals[0].Name)
	require.Equal(t, "High", ans.Impact.Signals[0].Classification)
	require.NotNil(t, ans.Impact.Signals[0].PValue)
	require.NotNil(t, ans.Impact.Signals[0].Before)
	require.NotNil(t, ans.Impact.Signals[0].After)
	require.NotNil(t, ans.Impact.Signals[0].Effect)

	// One event, as listed, with its impact.
	code, resp = do(t, "GET", base+"/change_events/"+url.PathEscape(bad), rtok, nil, "")
	require.Equal(t, 200, code, "%s", resp)
	var one struct {
		ID     string            `json:"id"`
		Name   string            `json:"event_name"`
		Labels map[string]string `json:"labels"`
		Impact *struct {
			Verdict string `json:"verdict"`
		} `json:"impact"`
	}
	require.NoError(t, json.Unmarshal(resp, &one))
	require.Equal(t, bad, one.ID)
	require.Equal(t, "checkout-v2", one.Labels["version"])
	require.Equal(t, "degraded", one.Impact.Verdict)
	code, resp = do(t, "GET", base+"/change_events?limit=100", rtok, nil, "")
	require.Equal(t, 200, code)
	require.Contains(t, string(resp), `"impact":{"verdict":"degraded"`)

	// Not yet past its after window: provisional, not stored.
	last := sc.EventID(scenario.MixedCheckoutConfig)
	code, resp = do(t, "POST", base+"/impact", wtok, []byte(`{"event_id":"`+last+`"}`), "application/json")
	require.Equal(t, 200, code, "%s", resp)
	require.NoError(t, json.Unmarshal(resp, &ans))
	require.True(t, ans.Impact.Provisional)
	code, resp = do(t, "GET", base+"/change_events/"+last, rtok, nil, "")
	require.Equal(t, 200, code)
	require.NotContains(t, string(resp), `"impact"`)

	code, resp = do(t, "POST", base+"/change_events", wtok, []byte(`{"id":"ci/run 7","event_name":"backup","attributes":{"team":"data"}}`), "application/json")
	require.Equal(t, 200, code, "%s", resp)
	code, resp = do(t, "GET", base+"/change_events/"+url.PathEscape("ci/run 7"), rtok, nil, "")
	require.Equal(t, 200, code, "an id with a slash: %s", resp)
	require.Contains(t, string(resp), `"event_name":"backup"`)

	for _, c := range []struct {
		method, path, token, body string
		code                      int
		has                       string
	}{
		{"GET", "/change_events/nope", rtok, "", 404, `no change event has that id: \"nope\"`},
		{"POST", "/impact", wtok, `{"event_id":"nope"}`, 404, `no change event has that id: \"nope\"`},
		{"POST", "/impact", wtok, `{"id":"x"}`, 400, `unknown field \"id\"; accepted: {\"event_id\"`},
		{"POST", "/impact", wtok, `{}`, 400, `field \"event_id\" is missing`},
		{"POST", "/impact", rtok, `{"event_id":"` + bad + `"}`, 403, "needs scope"},
		{"POST", "/impact", wtok, `{"event_id":"ci/run 7"}`, 422, "none of the labels that tie it to signals (match_labels: [service namespace env app])"},
	} {
		code, resp := do(t, c.method, base+c.path, c.token, []byte(c.body), "application/json")
		require.Equal(t, c.code, code, "%s %s: %s", c.method, c.path, resp)
		require.Contains(t, string(resp), c.has)
	}

	// Another organization's token, and its own path: not found.
	g := st.url + "/api/v4/organizations/globex"
	code, _ = do(t, "GET", g+"/change_events/"+bad, st.tokens["globex"][state.ScopeRead], nil, "")
	require.Equal(t, 404, code)
	code, _ = do(t, "POST", g+"/impact", st.tokens["globex"][state.ScopeWrite], []byte(`{"event_id":"`+bad+`"}`), "application/json")
	require.Equal(t, 404, code)
	code, _ = do(t, "GET", base+"/change_events/"+bad, st.tokens["globex"][state.ScopeRead], nil, "")
	require.Equal(t, 403, code)
}
