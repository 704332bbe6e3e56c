package web_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/state"
)

// TestResultsCacheBackfill caches a range query, backfills a change event
// inside the cached range, and gets the new answer: an append older than
// what a cached extent covers invalidates it.
func TestResultsCacheBackfill(t *testing.T) {
	st := newTestStack(t)
	wtok, rtok := st.tokens["acme"][state.ScopeWrite], st.tokens["acme"][state.ScopeRead]
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-2 * time.Hour)
	post := func(name string, at time.Time) {
		body := fmt.Sprintf(`{"event_name":%q,"timestamp":%d,"attributes":{"service":"checkout"}}`, name, at.Unix())
		code, resp := do(t, "POST", st.url+"/api/v4/organizations/acme/change_events", wtok, []byte(body), "application/json")
		require.Equal(t, 200, code, "%s", resp)
	}
	// The number of change events in the three hours before each step.
	rangeQuery := func() map[int64]string {
		q := url.Values{
			"query": {`sum(count_over_time(change_events{service="checkout"}[3h]))`},
			"start": {strconv.FormatInt(start.Unix(), 10)},
			"end":   {strconv.FormatInt(end.Unix(), 10)},
			"step":  {"60"},
		}
		code, resp := do(t, "GET", st.url+"/api/v4/organizations/acme/prometheus/api/v1/query_range?"+q.Encode(), rtok, nil, "")
		require.Equal(t, 200, code, "%s", resp)
		var r struct {
			Data struct {
				Result []struct {
					Values [][2]any `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(resp, &r))
		out := map[int64]string{}
		for _, s := range r.Data.Result {
			for _, v := range s.Values {
				out[int64(v[0].(float64))] = v[1].(string)
			}
		}
		return out
	}
	at := func(m map[int64]string, ago time.Duration) string { return m[end.Add(-ago).Unix()] }

	post("deploy-2", end.Add(-30*time.Minute))
	first := rangeQuery()
	require.Equal(t, "", at(first, 31*time.Minute))
	require.Equal(t, "1", at(first, 30*time.Minute))
	require.Equal(t, "1", at(first, 0))
	hits := cacheRequests(t, st, "hit")
	require.Equal(t, first, rangeQuery())
	require.Equal(t, hits+1, cacheRequests(t, st, "hit"), "the second query is answered from the cache")

	// Backfill an event 90 minutes ago, inside the cached range.
	post("deploy-1", end.Add(-90*time.Minute))
	second := rangeQuery()
	require.Equal(t, "", at(second, 91*time.Minute))
	require.Equal(t, "1", at(second, 90*time.Minute))
	require.Equal(t, "1", at(second, 31*time.Minute))
	require.Equal(t, "2", at(second, 30*time.Minute))
	require.Equal(t, "2", at(second, 0))
}

// cacheRequests is the results cache's count of lookups with the result.
func cacheRequests(t *testing.T, st *testStack, result string) float64 {
	code, body := do(t, "GET", st.url+"/metrics", "", nil, "")
	require.Equal(t, 200, code)
	prefix := `tidemark_query_results_cache_requests_total{result="` + result + `"} `
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}
