package web_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testutil"
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
	kept := cacheRequests(t, st, "response")
	require.Equal(t, first, rangeQuery())
	require.Equal(t, kept+1, cacheRequests(t, st, "response"), "the second query is answered with the kept response")

	// Backfill an event 90 minutes ago, inside the cached range.
	post("deploy-1", end.Add(-90*time.Minute))
	second := rangeQuery()
	require.Equal(t, "", at(second, 91*time.Minute))
	require.Equal(t, "1", at(second, 90*time.Minute))
	require.Equal(t, "1", at(second, 31*time.Minute))
	require.Equal(t, "2", at(second, 30*time.Minute))
	require.Equal(t, "2", at(second, 0))
	require.Equal(t, kept+1, cacheRequests(t, st, "response"), "the backfill dropped the kept response")
}

// TestKeptResponses: a range query asked again unchanged is answered with
// the bytes and headers of its first answer, compressed as the client
// asks, whether sent by GET or POST; an append after its last step keeps
// it, an append inside its range drops it; a request with any other
// parameter is evaluated.
func TestKeptResponses(t *testing.T) {
	st := newTestStack(t)
	wtok, rtok := st.tokens["acme"][state.ScopeWrite], st.tokens["acme"][state.ScopeRead]
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-time.Hour)
	write := func(service string, at time.Time, v float64) {
		body := testutil.EncodeV1(t, []testutil.Series{{Labels: labels.FromStrings("__name__", "kept_total", "service", service), Samples: []testutil.Sample{{T: at.UnixMilli(), V: v}}}})
		code, resp := do(t, "POST", st.url+"/api/v1/write", wtok, body, "application/x-protobuf")
		require.Equal(t, 204, code, "%s", resp)
	}
	for ts := start.Add(-10 * time.Minute); !ts.After(end); ts = ts.Add(time.Minute) {
		write("a", ts, float64(ts.Sub(start)/time.Minute))
	}
	form := url.Values{"query": {`sum(kept_total)`}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"60"}}
	ask := func(method string, form url.Values, header map[string]string) (*http.Response, []byte) {
		u := st.url + "/api/v1/query_range"
		var body io.Reader
		if method == "GET" {
			u += "?" + form.Encode()
		} else {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, u, body)
		require.NoError(t, err)
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Authorization", "Bearer "+rtok)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, "%s", b)
		return resp, b
	}
	decode := func(encoding string, b []byte) []byte {
		var zr io.Reader
		var err error
		switch encoding {
		case "":
			return b
		case "gzip":
			zr, err = gzip.NewReader(bytes.NewReader(b))
		case "deflate":
			zr, err = zlib.NewReader(bytes.NewReader(b))
		}
		require.NoError(t, err)
		out, err := io.ReadAll(zr)
		require.NoError(t, err)
		return out
	}
	same := func(want *http.Response, wantBody []byte, method, encoding string) {
		t.Helper()
		resp, body := ask(method, form, map[string]string{"Accept-Encoding": encoding})
		require.Equal(t, encoding, resp.Header.Get("Content-Encoding"))
		require.Equal(t, string(wantBody), string(decode(encoding, body)), "%s %s", method, encoding)
		for _, h := range []string{"Content-Type", "Vary"} {
			require.Equal(t, want.Header.Values(h), resp.Header.Values(h), h)
		}
	}

	firstResp, first := ask("GET", form, nil)
	kept := cacheRequests(t, st, "response")
	// Each is answered with the kept answer; gzip and deflate are
	// compressed the first time and kept so.
	for _, c := range []struct{ method, encoding string }{
		{"GET", ""}, {"POST", ""}, {"GET", "gzip"}, {"GET", "gzip"}, {"POST", "deflate"}, {"GET", "deflate"},
	} {
		same(firstResp, first, c.method, c.encoding)
	}
	require.Equal(t, kept+6, cacheRequests(t, st, "response"))
	// A query whose first answer was compressed keeps that too.
	form.Set("query", `max(kept_total)`)
	gzResp, gz := ask("GET", form, map[string]string{"Accept-Encoding": "gzip"})
	maxBody := decode("gzip", gz)
	same(gzResp, maxBody, "GET", "gzip")
	same(gzResp, maxBody, "GET", "")
	require.Equal(t, kept+8, cacheRequests(t, st, "response"))
	form.Set("query", `sum(kept_total)`)
	kept += 8

	// An append after the range's last step changes none of its steps.
	write("a", end.Add(time.Minute), 1e6)
	_, body := ask("GET", form, nil)
	require.Equal(t, string(first), string(body))
	require.Equal(t, kept+1, cacheRequests(t, st, "response"))

	// One inside it (a backfilled series) changes the answer.
	write("b", end.Add(-30*time.Minute), 1e6)
	_, body = ask("GET", form, nil)
	require.NotEqual(t, string(first), string(body))
	require.Contains(t, string(body), `"1000030"`)
	require.Equal(t, kept+1, cacheRequests(t, st, "response"))
	_, gz = ask("GET", form, map[string]string{"Accept-Encoding": "gzip"})
	require.Equal(t, string(body), string(decode("gzip", gz)), "no compressed copy of the old answer")
	require.Equal(t, kept+2, cacheRequests(t, st, "response"), "the new answer is kept")

	// Stats are the request's own: never kept.
	stats := url.Values{"stats": {"all"}}
	for k, v := range form {
		stats[k] = v
	}
	ask("GET", stats, nil)
	ask("GET", stats, nil)
	require.Equal(t, kept+2, cacheRequests(t, st, "response"))
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
