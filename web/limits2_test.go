package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/internal/testutil"
	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

func rwBody(t *testing.T, name string, n int) []byte {
	var ss []testutil.Series
	for i := range n {
		ss = append(ss, testutil.Series{Labels: labels.FromStrings("__name__", name, "i", fmt.Sprint(i)), Samples: []testutil.Sample{{T: time.Now().UnixMilli(), V: 1}}})
	}
	return testutil.EncodeV1(t, ss)
}

func TestSeriesLimit(t *testing.T) {
	st := newTestStack(t, func(o *server.Options) { o.MaxSeriesPerOrg = 10 })
	tok := st.tokens["acme"][state.ScopeWrite]
	code, resp := do(t, "POST", st.url+"/api/v1/write", tok, rwBody(t, "a", 8), "application/x-protobuf")
	require.Equal(t, 204, code, "%s", resp)
	code, resp = do(t, "POST", st.url+"/api/v1/write", tok, rwBody(t, "b", 5), "application/x-protobuf")
	require.Equal(t, http.StatusBadRequest, code, "%s", resp)
	require.Contains(t, string(resp), `organization "acme" has 10 active series, the limit (--limits.max-series-per-org)`)
	// Samples of existing series are still accepted.
	code, resp = do(t, "POST", st.url+"/api/v1/write", tok, rwBody(t, "a", 8), "application/x-protobuf")
	require.Equal(t, 204, code, "%s", resp)
	// Change events that would create series are refused with the same reason.
	code, resp = do(t, "POST", st.url+"/api/v4/organizations/acme/change_events", tok, []byte(`{"event_name":"x"}`), "application/json")
	require.Equal(t, http.StatusBadRequest, code, "%s", resp)
	require.Contains(t, string(resp), "active series")
	require.Empty(t, listEvents(t, st, "acme", client.ListQuery{}), "a refused event is not logged")
	// Another organization has its own budget.
	code, resp = do(t, "POST", st.url+"/api/v1/write", st.tokens["globex"][state.ScopeWrite], rwBody(t, "b", 5), "application/x-protobuf")
	require.Equal(t, 204, code, "%s", resp)
	// The second write (refused at its first new series past the limit) and the event.
	require.GreaterOrEqual(t, metricValue(t, st, `tidemark_limit_rejections_total{limit="max_series_per_org"}`), 2.0)
}

// metricValue is the value of one series of the server's /metrics.
func metricValue(t *testing.T, st *testStack, series string) float64 {
	t.Helper()
	code, body := do(t, "GET", st.url+"/metrics", "", nil, "")
	require.Equal(t, 200, code)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f
		}
	}
	t.Fatalf("/metrics has no series %s", series)
	return 0
}

func TestTokenRateLimit(t *testing.T) {
	st := newTestStack(t, func(o *server.Options) { o.TokenRequestsPerSecond, o.TokenBurst = 1, 3 })
	tok := st.tokens["acme"][state.ScopeRead]
	for range 3 {
		code, resp := do(t, "GET", st.url+"/api/v1/query?query=vector(1)", tok, nil, "")
		require.Equal(t, 200, code, "%s", resp)
	}
	req, _ := http.NewRequest("GET", st.url+"/api/v1/query?query=vector(1)", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	code, body := do(t, "GET", st.url+"/api/v4/organizations/acme/change_events", tok, nil, "")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Contains(t, string(body), `the token \"acme-read\" sent more than 1 requests per second (burst 3`)
	// Another token is not affected.
	code, _ = do(t, "GET", st.url+"/api/v1/query?query=vector(1)", st.tokens["acme"][state.ScopeAdmin], nil, "")
	require.Equal(t, 200, code)
	require.GreaterOrEqual(t, metricValue(t, st, `tidemark_limit_rejections_total{limit="token_requests_per_second"}`), 2.0)
}

// TestStorageFailure: when the storage cannot commit (a full or read-only
// disk), writes answer 503 with Retry-After and write nothing; once it can
// again, writes succeed.
func TestStorageFailure(t *testing.T) {
	broken := &brokenDisk{}
	st := newTestStack(t, func(o *server.Options) {
		o.WrapStorage = func(b storage.Backend) storage.Backend { return brokenBackend{b, broken} }
	})
	tok := st.tokens["acme"][state.ScopeWrite]
	broken.set(true)
	req, _ := http.NewRequest("POST", st.url+"/api/v1/write", strings.NewReader(string(rwBody(t, "m", 3))))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "10", resp.Header.Get("Retry-After"))
	code, body := do(t, "POST", st.url+"/api/v4/organizations/acme/change_events", tok, []byte(`{"event_name":"x","id":"x1"}`), "application/json")
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
	require.Empty(t, listEvents(t, st, "acme", client.ListQuery{}))

	broken.set(false)
	code, body = do(t, "POST", st.url+"/api/v1/write", tok, rwBody(t, "m", 3), "application/x-protobuf")
	require.Equal(t, 204, code, "%s", body)
	code, body = do(t, "POST", st.url+"/api/v4/organizations/acme/change_events", tok, []byte(`{"event_name":"x","id":"x1"}`), "application/json")
	require.Equal(t, 200, code, "%s", body)
	require.Len(t, listEvents(t, st, "acme", client.ListQuery{}), 1)
	code, body = do(t, "GET", st.url+"/api/v1/query?query=count(m)", st.tokens["acme"][state.ScopeRead], nil, "")
	require.Equal(t, 200, code)
	require.Contains(t, string(body), `"3"`)
}

// brokenDisk makes commits fail while it is on.
type brokenDisk struct{ on atomic.Bool }

func (b *brokenDisk) set(v bool) { b.on.Store(v) }
func (b *brokenDisk) get() bool  { return b.on.Load() }

var errDiskFull = errors.New("write /data/tsdb/acme/wal/00000001: no space left on device")

type brokenBackend struct {
	storage.Backend
	disk *brokenDisk
}

func (b brokenBackend) Org(slug string) (storage.Org, error) {
	o, err := b.Backend.Org(slug)
	if err != nil {
		return nil, err
	}
	return brokenOrg{o, b.disk}, nil
}

type brokenOrg struct {
	storage.Org
	disk *brokenDisk
}

func (o brokenOrg) AppenderV2(ctx context.Context) promstorage.AppenderV2 {
	return brokenAppender{o.Org.AppenderV2(ctx).(promstorage.ExemplarAppenderV2), o.disk}
}

type brokenAppender struct {
	promstorage.ExemplarAppenderV2
	disk *brokenDisk
}

// GetRef keeps the series limit working, as the storage.Org contract asks.
func (a brokenAppender) GetRef(ls labels.Labels, hash uint64) (promstorage.SeriesRef, labels.Labels) {
	return a.ExemplarAppenderV2.(promstorage.GetRef).GetRef(ls, hash)
}

func (a brokenAppender) Commit() error {
	if a.disk.get() {
		a.ExemplarAppenderV2.Rollback()
		return errDiskFull
	}
	return a.ExemplarAppenderV2.Commit()
}
