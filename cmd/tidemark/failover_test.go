package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/internal/testservices"
	"github.com/tidemark/tidemark/internal/testutil"
)

// alertLog records the alerts a webhook receives, with the replica that
// sent each (the host of its generator URL).
type alertLog struct {
	mtx    sync.Mutex
	alerts []receivedAlert
}

type receivedAlert struct {
	at     time.Time
	sender string
	name   string
}

func (l *alertLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Alerts []struct {
			Status       string
			Labels       map[string]string
			GeneratorURL string `json:"generatorURL"`
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	l.mtx.Lock()
	defer l.mtx.Unlock()
	for _, a := range body.Alerts {
		u, _ := url.Parse(a.GeneratorURL)
		l.alerts = append(l.alerts, receivedAlert{at: time.Now(), sender: u.Host, name: a.Labels["alertname"]})
	}
}

func (l *alertLog) snapshot() []receivedAlert {
	l.mtx.Lock()
	defer l.mtx.Unlock()
	return append([]receivedAlert(nil), l.alerts...)
}

// leaseHolder is the holder of an organization's lease, from the state
// database.
func leaseHolder(t testing.TB, pg, org string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg)
	require.NoError(t, err)
	defer c.Close(ctx)
	var holder string
	var expires int64
	err = c.QueryRow(ctx, `SELECT holder, expires_at FROM leases WHERE name = $1`, "org:"+org).Scan(&holder, &expires)
	if err == pgx.ErrNoRows || time.UnixMilli(expires).Before(time.Now()) {
		return ""
	}
	require.NoError(t, err)
	return holder
}

// holderReplica is the index of the replica whose process holds org's
// lease, or -1.
func (so *scaleOut) holderReplica(t testing.TB, org string) int {
	h := leaseHolder(t, so.pg, org)
	for i, r := range so.replicas {
		if r.cmd != nil && r.cmd.ProcessState == nil && strings.Contains(h, fmt.Sprintf("-%d-", r.cmd.Process.Pid)) {
			return i
		}
	}
	return -1
}

// TestScaleOutFailover kills the replica holding the organization's lease,
// under remote-write and event load, again and again: every acknowledged
// sample and event is readable afterwards, the active series of an open
// event has no gap, and the alert of an always-firing rule is sent by one
// replica at a time.
func TestScaleOutFailover(t *testing.T) {
	const kills = 10
	engine := testservices.Cortex(t)
	recv := &alertLog{}
	hook := httptest.NewServer(recv)
	defer hook.Close()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`groups:
  - name: always
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
`), 0o644))
	so := startScaleOut(t, 3, engine, engine.PushURL, engine.QueryURL, `
alerting:
  webhook_urls: [`+hook.URL+`]
  evaluation_interval: 1s
  resend_delay: 1s
  rule_files:
    acme: [`+rules+`]
`, "--leases.ttl=3s", "--leases.renew-interval=1s", "--events.active-resolution=1s")

	openAt := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	putEventsAt(t, so.replicas[0], "acme", fmt.Sprintf(`{"event_name":"open-x","id":"open-x","timestamp":"%s","attributes":{"service":"checkout"}}`, openAt.Format(time.RFC3339)))

	// Load through every replica; what a replica acknowledged must stay.
	var mtx sync.Mutex
	ackedSamples := map[int64]float64{}
	ackedEvents := map[string]bool{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for r := range so.replicas {
		// A replica keeps its address across restarts; the load reads it
		// once, as the main goroutine restarts the process.
		base := so.replicas[r].url
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				ts := time.Now().UnixMilli()
				v := float64(r*1_000_000 + i)
				err := testutil.RemoteWrite(t, base+"/api/v4/organizations/acme/prometheus/api/v1/write", acmeWrite, false, []testutil.Series{
					{Labels: labels.FromStrings("__name__", "failover_samples", "replica", fmt.Sprint(r)), Samples: []testutil.Sample{{T: ts, V: v}}},
				})
				if err == nil {
					mtx.Lock()
					ackedSamples[int64(r)<<48|ts] = v
					mtx.Unlock()
				}
				id := fmt.Sprintf("f-%d-%d", r, i)
				if code, _ := putEventsURL(base, "acme", `{"event_name":"failover","id":"`+id+`","attributes":{"replica":"`+fmt.Sprint(r)+`"}}`); code == 200 {
					mtx.Lock()
					ackedEvents[id] = true
					mtx.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}

	var takeovers []time.Duration
	for k := range kills {
		var holder int
		require.Eventually(t, func() bool { holder = so.holderReplica(t, "acme"); return holder >= 0 }, 20*time.Second, 100*time.Millisecond, "no replica holds acme's lease")
		time.Sleep(time.Duration(500+k*100) * time.Millisecond) // Kill at different moments of the holder's work.
		killed := so.replicas[holder]
		killed.stop(syscall.SIGKILL)
		at := time.Now()
		var next int
		require.Eventually(t, func() bool { next = so.holderReplica(t, "acme"); return next >= 0 && next != holder }, 30*time.Second, 50*time.Millisecond, "no replica took over acme's lease")
		takeovers = append(takeovers, time.Since(at))
		killed.start()
	}
	stop()
	wg.Wait()
	sort.Slice(takeovers, func(i, j int) bool { return takeovers[i] < takeovers[j] })
	t.Logf("lease takeovers after %d kills: min %s, median %s, max %s", kills, takeovers[0].Round(10*time.Millisecond), takeovers[len(takeovers)/2].Round(10*time.Millisecond), takeovers[len(takeovers)-1].Round(10*time.Millisecond))
	for _, d := range takeovers {
		require.Less(t, d, 30*time.Second)
	}

	// Every acknowledged sample, with its value.
	p := promClient(t, so.base(0, "acme"), acmeRead)
	now := time.Now()
	v, _, _, err := p.Query(context.Background(), "failover_samples[10m]", now)
	require.NoError(t, err)
	stored := map[int64]float64{}
	for _, s := range v.(model.Matrix) {
		r := int64(0)
		fmt.Sscan(string(s.Metric["replica"]), &r)
		for _, pt := range s.Values {
			stored[r<<48|int64(pt.Timestamp)] = float64(pt.Value)
		}
	}
	missing := 0
	for k, val := range ackedSamples {
		if got, ok := stored[k]; !ok || got != val {
			missing++
		}
	}
	require.Zero(t, missing, "of %d acknowledged samples, %d are missing or wrong", len(ackedSamples), missing)

	// Every acknowledged event, exactly once.
	ids := eventIDs(t, so.replicas[1], client.ListQuery{Name: "failover"})
	for id := range ackedEvents {
		require.Equal(t, 1, ids[id], "acknowledged event %s stored %d times", id, ids[id])
	}
	t.Logf("%d samples and %d events acknowledged through %d kills of the lease holder", len(ackedSamples), len(ackedEvents), kills)

	// The open event's active series: every 1s grid point from its start
	// to what the last holder has written (up to now less the lag).
	v, _, _, err = p.Query(context.Background(), `change_event_active{event_name="open-x"}[10m]`, now)
	require.NoError(t, err)
	require.Len(t, v.(model.Matrix), 1)
	pts := v.(model.Matrix)[0].Values
	require.Equal(t, model.TimeFromUnixNano(openAt.UnixNano()), pts[0].Timestamp, "the region starts at the start")
	for i := 1; i < len(pts); i++ {
		require.Equal(t, model.Time(1000), pts[i].Timestamp-pts[i-1].Timestamp, "gap in the active series at %s", pts[i-1].Timestamp.Time())
	}
	require.Greater(t, pts[len(pts)-1].Timestamp.Time(), now.Add(-45*time.Second), "the active series is written up to now less the lag")

	// The alert: sent by one replica at a time, once per evaluation.
	alerts := recv.snapshot()
	require.NotEmpty(t, alerts)
	senders := map[string]bool{}
	for i, a := range alerts {
		senders[a.sender] = true
		if i == 0 {
			continue
		}
		prev := alerts[i-1]
		if a.sender != prev.sender {
			require.Greater(t, a.at.Sub(prev.at), time.Second, "%s sent at %s, %s right after at %s: two replicas sent", prev.sender, prev.at, a.sender, a.at)
		} else {
			require.Greater(t, a.at.Sub(prev.at), 500*time.Millisecond, "%s sent twice within one evaluation", a.sender)
		}
	}
	require.Greater(t, len(senders), 1, "the alert moved with the lease")
	t.Logf("%d alerts from %d replicas", len(alerts), len(senders))
}
