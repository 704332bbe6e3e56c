package impact_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/config"
	"github.com/tidemark/tidemark/impact/scenario"
	"github.com/tidemark/tidemark/internal/testservices"
	"github.com/tidemark/tidemark/internal/testutil"
	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/storage/remote"
)

const (
	scaleRead  = "scale-read-token-0123456789"
	scaleWrite = "scale-write-token-0123456789"
)

// replica is one Tidemark of a scale-out deployment, in process.
type replica struct {
	url    string
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t *testing.T, cortex *testservices.CortexServer, stateURL string) *replica {
	cfg, err := config.Parse([]byte(`
organizations:
  - slug: acme
    tokens:
      - {name: r, scope: read, value: `+scaleRead+`}
      - {name: w, scope: write, value: `+scaleWrite+`}
impact:
  delay: 1s
`), "")
	require.NoError(t, err)
	opts := server.DefaultOptions()
	opts.ListenAddress = "127.0.0.1:0"
	opts.StoragePath = t.TempDir()
	opts.StateURL = stateURL
	opts.Storage = server.StorageRemote
	opts.Remote = remote.Options{WriteURL: cortex.PushURL, QueryURL: cortex.QueryURL, TenantHeader: "X-Scope-OrgID"}
	opts.TokenRequestsPerSecond = 0
	opts.ShutdownTimeout = 5 * time.Second
	opts.LeaseTTL, opts.LeaseRenew = 3*time.Second, time.Second
	opts.Config = cfg
	r := &replica{reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	srv, err := server.New(slog.New(slog.DiscardHandler), r.reg, opts)
	require.NoError(t, err)
	r.url = "http://" + srv.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- srv.Run(ctx) }()
	t.Cleanup(r.stop)
	select {
	case <-srv.Ready():
	case err := <-r.done:
		t.Fatalf("replica stopped before it was ready: %v", err)
	}
	return r
}

func (r *replica) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// scored is the replica's count of events scored and stored.
func (r *replica) scored(t *testing.T) float64 {
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "tidemark_impact_events_scored_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func (r *replica) do(t *testing.T, method, path, token string, body []byte) (int, []byte) {
	req, err := http.NewRequest(method, r.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (r *replica) verdict(t *testing.T, id string) string {
	code, body := r.do(t, "GET", "/api/v4/organizations/acme/change_events/"+id, scaleRead, nil)
	require.Equal(t, 200, code, "%s", body)
	var e struct {
		Impact *struct{ Verdict string } `json:"impact"`
	}
	require.NoError(t, json.Unmarshal(body, &e))
	if e.Impact == nil {
		return ""
	}
	return e.Impact.Verdict
}

// TestScaleOut: two replicas on Cortex and PostgreSQL. Changes written
// through one are scored once, by the replica holding the organization's
// lease, with the signals queried in Cortex; when it stops, the other takes
// the lease over and scores what comes since.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Cortex and PostgreSQL")
	}
	cortex := testservices.Cortex(t)
	stateURL := testservices.Postgres(t)
	a := startReplica(t, cortex, stateURL)
	b := startReplica(t, cortex, stateURL)

	end := time.Now().Truncate(time.Second)
	sc := scenario.Mixed(31, end)
	var series []testutil.Series
	for _, s := range sc.Series() {
		ts := testutil.Series{Labels: s.Labels}
		for _, p := range s.Samples {
			ts.Samples = append(ts.Samples, testutil.Sample{T: p.T, V: p.V})
		}
		series = append(series, ts)
	}
	_, err := testutil.WriteClient(t, a.url+"/api/v1/write", scaleWrite, false, false).Store(context.Background(), testutil.EncodeV1(t, series), 0)
	require.NoError(t, err)
	body, err := json.Marshal(sc.Events())
	require.NoError(t, err)
	code, resp := b.do(t, "POST", "/api/v4/organizations/acme/change_events", scaleWrite, body)
	require.Equal(t, 200, code, "%s", resp)

	bad := sc.EventID(scenario.MixedCheckoutV2)
	require.Eventually(t, func() bool { return a.verdict(t, bad) != "" }, 60*time.Second, 250*time.Millisecond)
	for i, c := range sc.Changes {
		if c.Expect == "" {
			continue
		}
		id := sc.EventID(i)
		require.Eventually(t, func() bool { return b.verdict(t, id) != "" }, 30*time.Second, 250*time.Millisecond, id)
		require.Equal(t, c.Expect, b.verdict(t, id), "%s %s %s", id, c.EventName, c.Service)
	}
	require.Equal(t, 7.0, a.scored(t)+b.scored(t), "each event scored once, by one replica")
	require.True(t, a.scored(t) == 0 || b.scored(t) == 0, "by the lease holder")

	// The holder stops; the other takes over and scores a new event.
	holder, other := a, b
	if b.scored(t) > 0 {
		holder, other = b, a
	}
	holder.stop()
	late := `[{"id": "late", "event_name": "deploy", "timestamp": ` + jsonInt(end.Add(-40*time.Minute).UnixMilli()) + `, "attributes": {"service": "cart", "env": "prod"}}]`
	code, resp = other.do(t, "POST", "/api/v4/organizations/acme/change_events", scaleWrite, []byte(late))
	require.Equal(t, 200, code, "%s", resp)
	require.Eventually(t, func() bool { return other.verdict(t, "late") != "" }, 60*time.Second, 250*time.Millisecond)
	require.Equal(t, "no_change", other.verdict(t, "late"))
	require.Equal(t, 1.0, other.scored(t))

	// The series are in the engine.
	code, resp = other.do(t, "GET", "/api/v1/query?query="+url.QueryEscape(`change_event_impact_score{version="checkout-v2"}`), scaleRead, nil)
	require.Equal(t, 200, code, "%s", resp)
	require.Contains(t, string(resp), `"version":"checkout-v2"`)
}

func jsonInt(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
