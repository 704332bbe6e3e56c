package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/internal/testservices"
	"github.com/tidemark/tidemark/internal/testutil"
)

const (
	globexRead  = "globex-read-token-0123456789"
	globexWrite = "globex-write-token-0123456789"
	// globexTenant is globex's tenant in the engine: not its slug.
	globexTenant = "tenant-globex"
)

// scaleOut is a set of Tidemark replicas on one PostgreSQL and one engine.
type scaleOut struct {
	t        testing.TB
	pg       string
	engine   *testservices.CortexServer
	config   string
	replicas []*binServer
}

// scaleOutConfig declares acme (tenant acme) and globex (tenant
// tenant-globex), and anything more in extra.
func scaleOutConfig(t testing.TB, dir, extra string) string {
	p := filepath.Join(dir, "tidemark.yml")
	require.NoError(t, os.WriteFile(p, []byte(`
organizations:
  - slug: acme
    tokens:
      - {name: grafana, scope: read, value: `+acmeRead+`}
      - {name: prometheus, scope: write, value: `+acmeWrite+`}
  - slug: globex
    tenant: `+globexTenant+`
    tokens:
      - {name: grafana, scope: read, value: `+globexRead+`}
      - {name: prometheus, scope: write, value: `+globexWrite+`}
`+extra), 0o644))
	return p
}

// startScaleOut starts n replicas with the remote engine at writeURL and
// queryURL (the engine's own, or a proxy in front of it).
func startScaleOut(t testing.TB, n int, engine *testservices.CortexServer, writeURL, queryURL, extraConfig string, args ...string) *scaleOut {
	so := &scaleOut{t: t, pg: testservices.Postgres(t), engine: engine}
	so.config = scaleOutConfig(t, t.TempDir(), extraConfig)
	t.Cleanup(func() {
		if t.Failed() {
			for i, r := range so.replicas {
				t.Logf("replica %d log:\n%s", i, r.log)
			}
		}
	})
	for range n {
		so.replicas = append(so.replicas, startServer(t, t.TempDir(), append([]string{
			"--storage.backend=remote",
			"--storage.remote.write-url=" + writeURL,
			"--storage.remote.query-url=" + queryURL,
			"--state.url=" + so.pg,
			"--config.file=" + so.config,
			"--limits.token-requests-per-second=0",
		}, args...)...))
	}
	return so
}

func (so *scaleOut) base(i int, org string) string {
	return so.replicas[i].url + "/api/v4/organizations/" + org + "/prometheus"
}

// engineAPI queries the engine directly as a tenant.
func engineAPI(t testing.TB, c *testservices.CortexServer, tenant string) promv1.API {
	cl, err := api.NewClient(api.Config{Address: c.QueryURL, RoundTripper: testservices.TenantRoundTripper(tenant, nil)})
	require.NoError(t, err)
	return promv1.NewAPI(cl)
}

func TestScaleOut(t *testing.T) {
	engine := testservices.Cortex(t)
	so := startScaleOut(t, 3, engine, engine.PushURL, engine.QueryURL, "")
	now := time.Now()

	t.Run("write through one replica, read through another", func(t *testing.T) {
		require.NoError(t, testutil.RemoteWrite(t, so.base(0, "acme")+"/api/v1/write", acmeWrite, false, []testutil.Series{
			{Labels: labels.FromStrings("__name__", "scaleout_requests_total", "service", "checkout"), Samples: []testutil.Sample{{T: now.Add(-time.Minute).UnixMilli(), V: 10}, {T: now.UnixMilli(), V: 20}}},
		}))
		// Remote write 2.0 (decoded here, sent on as 1.0: Cortex takes only 1.0).
		require.NoError(t, testutil.RemoteWrite(t, so.base(1, "acme")+"/api/v1/write", acmeWrite, true, []testutil.Series{
			{Labels: labels.FromStrings("__name__", "scaleout_v2", "service", "checkout"), Samples: []testutil.Sample{{T: now.UnixMilli(), V: 7}}},
		}))
		p := promClient(t, so.base(2, "acme"), acmeRead)
		require.Equal(t, `scaleout_requests_total{service="checkout"} => 20`, sampleString(instant(t, p, "scaleout_requests_total", now)))
		require.Equal(t, `scaleout_v2{service="checkout"} => 7`, sampleString(instant(t, p, "scaleout_v2", now)))
		// PromQL runs in the engine: a range query over what was written.
		v, _, _, err := p.QueryRange(context.Background(), "scaleout_requests_total", promv1.Range{Start: now.Add(-time.Minute), End: now, Step: 30 * time.Second})
		require.NoError(t, err)
		require.Len(t, v.(model.Matrix), 1)
		require.Len(t, v.(model.Matrix)[0].Values, 3)
		// Flagger's plain GET with no time sees a sample written just now.
		require.NoError(t, testutil.RemoteWrite(t, so.base(0, "acme")+"/api/v1/write", acmeWrite, false, []testutil.Series{
			{Labels: labels.FromStrings("__name__", "scaleout_fresh"), Samples: []testutil.Sample{{T: time.Now().UnixMilli(), V: 1}}},
		}))
		code, body := flaggerGet(t, so.base(1, "acme"), acmeRead, "scaleout_fresh")
		require.Equal(t, 200, code, "%v", body)
		require.Len(t, body["data"].(map[string]any)["result"], 1, "%v", body)
		// Errors are Prometheus's shapes, from the engine.
		code, body = flaggerGet(t, so.base(1, "acme"), acmeRead, "sum(up) or 0.99")
		require.Equal(t, 400, code)
		require.Equal(t, "bad_data", body["errorType"])
	})

	t.Run("a start through one replica and its stop through another pair", func(t *testing.T) {
		start := now.Add(-2 * time.Minute).Truncate(time.Second)
		putEventsAt(t, so.replicas[0], "acme", fmt.Sprintf(`{"event_name":"deploy-x","id":"dx-1","timestamp":"%s","attributes":{"service":"checkout"}}`, start.Format(time.RFC3339)))
		putEventsAt(t, so.replicas[1], "acme", fmt.Sprintf(`{"event_name":"deploy-x","id":"dx-2","event_state":"stop","timestamp":"%s","attributes":{"service":"checkout"}}`, start.Add(90*time.Second).Format(time.RFC3339)))
		p := promClient(t, so.base(2, "acme"), acmeRead)
		require.Equal(t, `change_event_duration_seconds{event_name="deploy-x", service="checkout"} => 90`, sampleString(instant(t, p, `change_event_duration_seconds{event_name="deploy-x"}`, now)))
		evs := eventIDs(t, so.replicas[2], client.ListQuery{Name: "deploy-x"})
		require.Equal(t, map[string]int{"dx-1": 1, "dx-2": 1}, evs)
	})

	t.Run("the same event sent to two replicas at once is stored once", func(t *testing.T) {
		var wg sync.WaitGroup
		var failures atomic.Int32
		for i := range 30 {
			for r := range 2 {
				wg.Go(func() {
					body := fmt.Sprintf(`{"event_name":"race","id":"race-%d","attributes":{"n":"%d"}}`, i, i)
					if code, resp := putEventsCode(so.replicas[r], "acme", body); code != 200 {
						failures.Add(1)
						t.Errorf("replica %d: %d %s", r, code, resp)
					}
				})
			}
		}
		wg.Wait()
		ids := eventIDs(t, so.replicas[2], client.ListQuery{Name: "race"})
		require.Len(t, ids, 30)
		for id, n := range ids {
			require.Equal(t, 1, n, "event %s stored %d times", id, n)
		}
	})

	t.Run("organizations are tenants", func(t *testing.T) {
		require.NoError(t, testutil.RemoteWrite(t, so.base(0, "globex")+"/api/v1/write", globexWrite, false, []testutil.Series{
			{Labels: labels.FromStrings("__name__", "globex_only"), Samples: []testutil.Sample{{T: now.UnixMilli(), V: 3}}},
		}))
		// Tidemark checks every token exactly as in embedded mode.
		code, _ := getBody(t, so.base(0, "globex")+"/api/v1/query?query=up", acmeRead)
		require.Equal(t, http.StatusForbidden, code)
		err := testutil.RemoteWrite(t, so.base(0, "globex")+"/api/v1/write", acmeWrite, false, []testutil.Series{
			{Labels: labels.FromStrings("__name__", "intruder"), Samples: []testutil.Sample{{T: now.UnixMilli(), V: 1}}},
		})
		require.Error(t, err)
		require.Empty(t, instant(t, promClient(t, so.base(1, "globex"), globexRead), "scaleout_requests_total", now))
		require.Len(t, instant(t, promClient(t, so.base(1, "globex"), globexRead), "globex_only", now), 1)
		// In the engine, globex's tenant holds none of acme's series, and
		// acme's none of globex's.
		require.Empty(t, instant(t, engineAPI(t, engine, globexTenant), "scaleout_requests_total", now))
		require.Len(t, instant(t, engineAPI(t, engine, globexTenant), "globex_only", now), 1)
		require.Empty(t, instant(t, engineAPI(t, engine, "acme"), "globex_only", now))
		require.Empty(t, instant(t, engineAPI(t, engine, "globex"), "globex_only", now), "the tenant is the configured one, not the slug")
	})
}

// putEventsCode writes change events through a replica and returns the
// status and body.
func putEventsCode(srv *binServer, org, body string) (int, string) {
	return putEventsURL(srv.url, org, body)
}

// putEventsURL writes change events through the server at base.
func putEventsURL(base, org, body string) (int, string) {
	req, _ := http.NewRequest("PUT", base+"/api/v4/organizations/"+org+"/change_events", strings.NewReader(body))
	tok := acmeWrite
	if org == "globex" {
		tok = globexWrite
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

func putEventsAt(t testing.TB, srv *binServer, org, body string) {
	t.Helper()
	code, resp := putEventsCode(srv, org, body)
	require.Equal(t, 200, code, "%s", resp)
}

// sampleString is a vector's samples as "metric => value", without times.
func sampleString(v model.Vector) string {
	var parts []string
	for _, s := range v {
		parts = append(parts, fmt.Sprintf("%s => %s", s.Metric, s.Value))
	}
	return strings.Join(parts, "; ")
}

var _ = net.Listen
