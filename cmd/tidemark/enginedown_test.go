package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/internal/testservices"
	"github.com/tidemark/tidemark/internal/testutil"
)

// tcpProxy forwards connections to target while up; while down it closes
// every connection, as an engine that is gone would.
type tcpProxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mtx    sync.Mutex
	conns  map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *tcpProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mtx.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mtx.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// setDown closes every open connection and refuses new ones, or lets them
// through again.
func (p *tcpProxy) setDown(down bool) {
	p.down.Store(down)
	if !down {
		return
	}
	p.mtx.Lock()
	defer p.mtx.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// TestScaleOutEngineDown: while the engine cannot be reached, writes answer
// 503 with Retry-After and store nothing; once it is back, they succeed, and
// nothing acknowledged before is lost.
func TestScaleOutEngineDown(t *testing.T) {
	engine := testservices.Cortex(t)
	proxy := newTCPProxy(t, engine.URL[len("http://"):])
	so := startScaleOut(t, 1, engine, "http://"+proxy.addr()+"/api/v1/push", "http://"+proxy.addr()+"/prometheus", "")
	base := so.base(0, "acme")
	now := time.Now()
	write := func(name string, v float64) error {
		return testutil.RemoteWrite(t, base+"/api/v1/write", acmeWrite, false, []testutil.Series{
			{Labels: labels.FromStrings("__name__", name), Samples: []testutil.Sample{{T: time.Now().UnixMilli(), V: v}}},
		})
	}
	require.NoError(t, write("before_outage", 1))
	putEventsAt(t, so.replicas[0], "acme", `{"event_name":"before-outage","id":"bo-1","attributes":{"service":"a"}}`)

	proxy.setDown(true)
	req, _ := http.NewRequest("POST", base+"/api/v1/write", nil)
	req.Header.Set("Authorization", "Bearer "+acmeWrite)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Body = io.NopCloser(bytes.NewReader(testutil.EncodeV1(t, []testutil.Series{{Labels: labels.FromStrings("__name__", "during_outage"), Samples: []testutil.Sample{{T: now.UnixMilli(), V: 2}}}})))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Contains(t, string(body), "the metrics engine did not answer")

	code, eresp := putEventsCode(so.replicas[0], "acme", `{"event_name":"during-outage","id":"do-1","attributes":{"service":"a"}}`)
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", eresp)
	code, qbody := getBody(t, base+"/api/v1/query?query=before_outage", acmeRead)
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", qbody)
	require.Contains(t, qbody, `"errorType":"unavailable"`)
	require.Empty(t, eventIDs(t, so.replicas[0], client.ListQuery{Name: "during-outage"}), "a refused event is not logged")
	// Not even as a row waiting to be replayed: its samples were to reach
	// the engine before the log committed.
	require.Zero(t, countRows(t, so.pg, `SELECT COUNT(*) FROM change_events WHERE id = 'do-1'`))
	// The replica stays up and ready.
	hr, err := http.Get(so.replicas[0].url + "/-/ready")
	require.NoError(t, err)
	hr.Body.Close()
	require.Equal(t, 200, hr.StatusCode)

	proxy.setDown(false)
	require.NoError(t, write("after_outage", 3))
	putEventsAt(t, so.replicas[0], "acme", `{"event_name":"during-outage","id":"do-1","attributes":{"service":"a"}}`)
	p := promClient(t, base, acmeRead)
	at := time.Now()
	require.Len(t, instant(t, p, "before_outage", at), 1, "acknowledged before the outage")
	require.Len(t, instant(t, p, "after_outage", at), 1)
	require.Empty(t, instant(t, p, "during_outage", at), "refused during the outage")
	require.Len(t, instant(t, p, `change_events{event_name=~"before-outage|during-outage"}`, at), 2)
	require.Equal(t, map[string]int{"do-1": 1}, eventIDs(t, so.replicas[0], client.ListQuery{Name: "during-outage"}))
}

// countRows runs a count query on the state database.
func countRows(t *testing.T, pg, q string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg)
	require.NoError(t, err)
	defer c.Close(ctx)
	var n int
	require.NoError(t, c.QueryRow(ctx, q).Scan(&n))
	return n
}
