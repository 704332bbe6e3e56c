package web_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testservices"
	"github.com/tidemark/tidemark/internal/testutil"
	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/state"
)

// TestPrometheusSurfaceRemote: with samples in a remote engine (Cortex),
// the routes the engine answers are its answers for the organization's
// tenant, and those answered here still answer.
func TestPrometheusSurfaceRemote(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Cortex")
	}
	c := testservices.Cortex(t)
	st := newTestStack(t, func(o *server.Options) {
		o.Storage = server.StorageRemote
		o.Remote.WriteURL, o.Remote.QueryURL = c.PushURL, c.QueryURL
	})
	acme := st.tokens["acme"]
	now := time.Now()
	require.NoError(t, testutil.RemoteWrite(t, st.url+"/api/v1/write", acme[state.ScopeWrite], false, []testutil.Series{{
		Labels:  labels.FromStrings("__name__", "remote_surface", "service", "checkout"),
		Samples: []testutil.Sample{{T: now.UnixMilli(), V: 3}},
	}}))
	q := url.Values{"query": {"remote_surface"}, "start": {formatTime(now.Add(-time.Hour))}, "end": {formatTime(now.Add(time.Minute))}}
	for _, path := range []string{
		"/api/v1/query_exemplars?" + q.Encode(),
		"/api/v1/metadata",
		"/api/v1/format_query?query=up",
		"/api/v1/parse_query?query=up",
		"/api/v1/status/flags",
		"/api/v1/status/runtimeinfo",
	} {
		code, body := do(t, "GET", st.url+path, acme[state.ScopeRead], nil, "")
		promData(t, code, body)
	}
	code, body := do(t, "POST", st.url+"/api/v1/read", acme[state.ScopeRead], remoteReadRequest(t, "remote_surface"), "application/x-protobuf")
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, body = do(t, "GET", st.url+"/federate?match[]=remote_surface", acme[state.ScopeRead], nil, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), `remote_surface{service="checkout",instance=""} 3`)
	// Cortex has no status/tsdb: Tidemark answers it from the engine's
	// query API.
	code, body = do(t, "GET", st.url+"/api/v1/status/tsdb", acme[state.ScopeRead], nil, "")
	promData(t, code, body)
	require.Contains(t, string(body), `"numSeries":1,`)
	require.Contains(t, string(body), `"seriesCountByMetricName":[{"name":"remote_surface","value":1}]`)
	require.Contains(t, string(body), `"seriesCountByLabelValuePair":[{"name":"__name__=remote_surface","value":1}]`)
}
