package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeServer answers each request with the next of answers (the last one
// repeats) and records what it was asked.
type fakeServer struct {
	t       *testing.T
	mu      sync.Mutex
	answers []answer
	reqs    []*http.Request
	bodies  [][]byte
}

type answer struct {
	status int
	header http.Header
	body   string
}

func newFake(t *testing.T, answers ...answer) (*fakeServer, *httptest.Server) {
	f := &fakeServer{t: t, answers: answers}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.bodies = append(f.bodies, b)
	a := f.answers[min(len(f.reqs), len(f.answers))-1]
	f.mu.Unlock()
	for k, vs := range a.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// newTestClient returns a client of srv whose waits are recorded, not
// slept.
func newTestClient(t *testing.T, srv *httptest.Server, retries int) (*Client, *[]time.Duration) {
	c, err := New(Options{URL: srv.URL + "/", Org: "acme", Token: "tdm_x", Retries: retries})
	require.NoError(t, err)
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	return c, &waits
}

const okWrite = `{"message":"success","id":"1","timestamp":"2026-11-25T10:00:00.000Z"}`

func TestRetries(t *testing.T) {
	t.Run("a Retry-After in seconds or as an HTTP date is waited for", func(t *testing.T) {
		date := time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat)
		f, srv := newFake(t,
			answer{status: 429, header: http.Header{"Retry-After": {"2"}}, body: `{"error":"slow down"}`},
			answer{status: 503, header: http.Header{"Retry-After": {date}}, body: `{"error":"storage full"}`},
			answer{status: 200, body: okWrite})
		c, waits := newTestClient(t, srv, 3)
		res, err := c.Write(context.Background(), Event{Name: "deploy", State: "start", ID: "a"})
		require.NoError(t, err)
		require.Equal(t, "1", res.ID)
		require.Len(t, f.reqs, 3)
		require.Len(t, *waits, 2)
		require.Equal(t, 2*time.Second, (*waits)[0])
		require.Greater(t, (*waits)[1], 3*time.Second, "the HTTP date is about 5s ahead")
		require.LessOrEqual(t, (*waits)[1], 5*time.Second)
	})

	t.Run("without Retry-After the backoff doubles, with jitter", func(t *testing.T) {
		first := map[time.Duration]bool{}
		for range 10 {
			_, srv := newFake(t, answer{status: 502, body: "bad gateway"})
			c, waits := newTestClient(t, srv, 4)
			_, err := c.Write(context.Background(), Event{Name: "deploy"})
			var ue *UnavailableError
			require.ErrorAs(t, err, &ue)
			require.Equal(t, 5, ue.Tries)
			require.EqualError(t, err, "gave up after 5 tries: server answered 502: bad gateway")
			require.Len(t, *waits, 4)
			prev := c.opts.MinBackoff / 2
			for i, w := range *waits {
				// Each wait is double the last, jittered down by up to half.
				require.GreaterOrEqual(t, w, prev, "wait %d: %v", i, *waits)
				require.LessOrEqual(t, w, 2*prev, "wait %d: %v", i, *waits)
				prev = w
			}
			first[(*waits)[0]] = true
		}
		require.Greater(t, len(first), 1, "ten clients waited exactly as long: no jitter")
	})

	t.Run("a 4xx is not retried", func(t *testing.T) {
		f, srv := newFake(t, answer{status: 400, body: `{"error":"field \"event_name\": is required"}`})
		c, waits := newTestClient(t, srv, 3)
		_, err := c.WriteBatch(context.Background(), []Event{{State: "start"}})
		var rej *RejectedError
		require.ErrorAs(t, err, &rej)
		require.Equal(t, 400, rej.Status)
		require.EqualError(t, err, `rejected by the server (400): field "event_name": is required`)
		require.Len(t, f.reqs, 1)
		require.Empty(t, *waits)
	})

	t.Run("the context ending while waiting gives up with the last failure", func(t *testing.T) {
		_, srv := newFake(t, answer{status: 503, body: `{"error":"not ready"}`})
		c, _ := newTestClient(t, srv, 5)
		ctx, cancel := context.WithCancel(context.Background())
		c.sleep = func(context.Context, time.Duration) error { cancel(); return ctx.Err() }
		_, err := c.Write(ctx, Event{Name: "deploy"})
		var ue *UnavailableError
		require.ErrorAs(t, err, &ue)
		require.EqualError(t, err, "gave up after 1 tries: server answered 503: not ready")
	})
}

func TestList(t *testing.T) {
	f, srv := newFake(t,
		answer{status: 503, header: http.Header{"Retry-After": {"1"}}, body: `{"error":"not ready"}`},
		answer{status: 200, body: `{"events": [
		  {"id": "2", "event_name": "deploy", "event_state": "stop", "timestamp": "2026-11-25T10:05:00.000Z", "value": 2,
		   "labels": {"service": "checkout"}, "metadata": {"commit": "9f2c1e7", "n": 3}, "links": [{"href": "https://ci.example/run/42", "text": "pipeline"}],
		   "received_at": "2026-11-25T10:05:00.010Z", "pair_id": "1", "duration_seconds": 300, "open": false},
		  {"id": "1", "event_name": "deploy", "event_state": "start", "timestamp": "2026-11-25T10:00:00.000Z", "value": 1,
		   "labels": {"service": "checkout"}, "metadata": {}, "links": null, "received_at": "2026-11-25T10:00:00.010Z", "open": true}
		], "next_cursor": "MTc5NTU5NzIwMDAwMDox"}`})
	c, waits := newTestClient(t, srv, 2)
	res, err := c.List(context.Background(), ListQuery{
		Start: time.Date(1970, 1, 1, 0, 0, 0, 5e6, time.UTC), // 5ms: as a number, the server would read seconds
		End:   time.Date(2026, 11, 25, 11, 0, 0, 0, time.FixedZone("CET", 3600)),
		Name:  "deploy", Match: []string{`{service="checkout"}`, `{env!="dev"}`}, Limit: 2, Cursor: "abc",
	})
	require.NoError(t, err)
	require.Equal(t, []time.Duration{time.Second}, *waits, "List retries through the one retry loop")

	r := f.reqs[1]
	require.Equal(t, http.MethodGet, r.Method)
	require.Equal(t, "/api/v4/organizations/acme/change_events", r.URL.Path)
	require.Equal(t, "Bearer tdm_x", r.Header.Get("Authorization"))
	require.Empty(t, f.bodies[1])
	require.Equal(t, url.Values{
		"start": {"1970-01-01T00:00:00.005Z"}, "end": {"2026-11-25T10:00:00.000Z"}, "event_name": {"deploy"},
		"match[]": {`{service="checkout"}`, `{env!="dev"}`}, "limit": {"2"}, "cursor": {"abc"},
	}, r.URL.Query())

	require.Equal(t, "MTc5NTU5NzIwMDAwMDox", res.NextCursor)
	require.Len(t, res.Events, 2)
	d := 300.0
	require.Equal(t, Logged{
		ID: "2", Name: "deploy", State: "stop", Timestamp: "2026-11-25T10:05:00.000Z", Value: 2,
		Labels: map[string]string{"service": "checkout"}, Metadata: map[string]any{"commit": "9f2c1e7", "n": 3.0},
		Links: []Link{{Href: "https://ci.example/run/42", Text: "pipeline"}}, ReceivedAt: "2026-11-25T10:05:00.010Z",
		PairID: "1", Duration: &d,
	}, res.Events[0])
	require.True(t, res.Events[1].Open)

	// An empty query sends no parameters: the server's defaults apply.
	_, err = c.List(context.Background(), ListQuery{})
	require.NoError(t, err)
	require.Empty(t, f.reqs[2].URL.RawQuery)
}

func TestAnalyze(t *testing.T) {
	const report = `{"verdict": "fail", "score": 0, "reason": "metric latency failed and is critical",
	  "window": {"start": "2026-11-25T10:00:00.000Z", "end": "2026-11-25T10:15:00.000Z", "step": "15s", "points": 61,
	    "event": {"id": "7", "event_name": "checkout-20", "labels": {"service": "checkout"}, "timestamp": "2026-11-25T10:00:00.000Z", "open": false}},
	  "confidence": 0.98, "thresholds": {"pass": 95, "marginal": 75},
	  "metrics": [{"name": "latency", "classification": "High", "reason": "higher", "critical": true, "critical_failure": true,
	    "direction": "increase", "weight": 1, "p_value": 0.0001, "effect": 1.6, "effect_measure": "meanRatio", "ratio": 1.6,
	    "shift": 0.12, "confidence_interval": [0.1, 0.14], "canary_points": 61, "baseline_points": 61,
	    "canary_series": 1, "baseline_series": 1, "queries": {"canary": "sum(a)", "baseline": "sum(b)"}}],
	  "event": {"event_name": "analysis", "id": "8", "labels": {"outcome": "fail"}}}`
	f, srv := newFake(t, answer{status: 500, body: "boom"}, answer{status: 200, body: report})
	c, waits := newTestClient(t, srv, 1)
	req := json.RawMessage(`{"window": {"event_name": "checkout-20"},  "metrics": [{"canary": "sum(a)", "baseline": "sum(b)"}]}`)
	rep, err := c.Analyze(context.Background(), req)
	require.NoError(t, err)
	require.Len(t, *waits, 1, "Analyze retries through the one retry loop")
	require.Equal(t, http.MethodPost, f.reqs[1].Method)
	require.Equal(t, "/api/v4/organizations/acme/analysis", f.reqs[1].URL.Path)
	require.Equal(t, "application/json", f.reqs[1].Header.Get("Content-Type"))
	require.Equal(t, string(req), string(f.bodies[1]), "the request is sent as it is")

	require.Equal(t, VerdictFail, rep.Verdict)
	require.Equal(t, "checkout-20", rep.Window.Event.Name)
	require.Equal(t, 61, rep.Metrics[0].CanaryPoints)
	require.InDelta(t, 0.0001, *rep.Metrics[0].PValue, 1e-12)
	require.True(t, rep.Metrics[0].CriticalFailure)
	require.Equal(t, "8", rep.Event.ID)
	require.JSONEq(t, report, string(rep.Raw))

	t.Run("a refused request", func(t *testing.T) {
		_, srv := newFake(t, answer{status: 422, body: `{"error":"no start of event \"checkout-40\" is in the event log"}`})
		c, _ := newTestClient(t, srv, 3)
		_, err := c.Analyze(context.Background(), req)
		var rej *RejectedError
		require.True(t, errors.As(err, &rej))
		require.EqualError(t, err, `rejected by the server (422): no start of event "checkout-40" is in the event log`)
	})
}
