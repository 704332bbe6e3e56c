package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/internal/testutil"
)

// acked records what the server acknowledged.
type acked struct {
	mtx     sync.Mutex
	samples map[int64]float64 // timestamp -> value of series crash_samples
	events  map[string]bool   // ids
}

// load writes samples and events until the server stops answering, and
// records what was acknowledged.
func load(t *testing.T, srv *binServer, cycle int, a *acked, stop <-chan struct{}) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // Remote write, one sample per request, increasing times.
		defer wg.Done()
		c := testutil.WriteClient(t, srv.url+"/api/v4/organizations/acme/prometheus/api/v1/write", acmeWrite, false, false)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ts := time.Now().UnixMilli()
			v := float64(cycle*1_000_000 + i)
			body := testutil.EncodeV1(t, []testutil.Series{{Labels: labels.FromStrings("__name__", "crash_samples"), Samples: []testutil.Sample{{T: ts, V: v}}}})
			if _, err := c.Store(context.Background(), body, 0); err != nil {
				return
			}
			a.mtx.Lock()
			a.samples[ts] = v
			a.mtx.Unlock()
			time.Sleep(time.Millisecond) // Distinct timestamps.
		}
	}()
	go func() { // Change events in batches of 20, each with its own id.
		defer wg.Done()
		for b := 0; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			var evs []map[string]any
			var ids []string
			for j := range 20 {
				id := fmt.Sprintf("c%d-b%d-e%d", cycle, b, j)
				ids = append(ids, id)
				evs = append(evs, map[string]any{"event_name": "crash-event", "id": id, "attributes": map[string]string{"id": id}})
			}
			body, _ := json.Marshal(evs)
			req, _ := http.NewRequest("POST", srv.url+"/api/v4/organizations/acme/change_events", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+acmeWrite)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return
			}
			a.mtx.Lock()
			for _, id := range ids {
				a.events[id] = true
			}
			a.mtx.Unlock()
		}
	}()
	<-stop
	wg.Wait()
}

// TestCrashSafety kills the server with SIGKILL at random moments under
// remote-write and change-event load, 20 times, and checks that everything
// acknowledged is there after each restart, once, that open events survive,
// and (in a killed and in the stopped cycle) that a pending alert keeps its
// for state. The last
// cycle ends with SIGTERM: a clean stop finishes in-flight writes.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("alerting:\n  evaluation_interval: 1s\n  sync_interval: 1s\n  for_grace_period: 1s\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	srv := startServer(t, dir, "--config.file="+cfg)
	a := &acked{samples: map[int64]float64{}, events: map[string]bool{}}

	// An alert pending for an hour: its for state must survive the kills.
	req, _ := http.NewRequest("POST", srv.url+"/api/v4/organizations/acme/prometheus/config/v1/rules/crash",
		strings.NewReader("name: crash\ninterval: 1s\nrules:\n  - alert: CrashPending\n    expr: vector(1)\n    for: 1h\n"))
	req.Header.Set("Authorization", "Bearer "+acmeWrite)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	firstActive := pendingSince(t, srv, time.Time{})
	rng := rand.New(rand.NewPCG(1, 2))
	const cycles = 20
	for cycle := range cycles {
		// An event left open in every cycle.
		code, out := tidemark(t, []string{"TIDEMARK_URL=" + srv.url, "TIDEMARK_ORG=acme", "TIDEMARK_TOKEN=" + acmeWrite},
			"event", "start", "long-running", "-a", "cycle="+strconv.Itoa(cycle))
		require.Equal(t, 0, code, out)

		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { load(t, srv, cycle, a, stop); close(done) }()
		time.Sleep(time.Duration(150+rng.IntN(500)) * time.Millisecond)
		sig := syscall.SIGKILL
		if cycle == cycles-1 {
			sig = syscall.SIGTERM
		}
		checkFor := cycle == cycles/2-1 || cycle == cycles-1
		var pendingFor time.Duration
		if checkFor {
			// Let the alert be pending long enough that a reset shows.
			since := pendingSince(t, srv, time.Time{})
			time.Sleep(time.Until(since.Add(8 * time.Second)))
			pendingFor = time.Since(since)
		}
		srv.stop(sig)
		close(stop)
		<-done
		restart := time.Now()
		srv.start()
		verifyAcked(t, srv, a, cycle+1)
		if checkFor {
			// Restored, not reset: Prometheus keeps the time the alert had
			// been pending (it moves activeAt forward by the downtime).
			active := pendingSince(t, srv, restart)
			require.Greater(t, pendingFor, 5*time.Second, "the check needs an alert pending for a while")
			require.GreaterOrEqual(t, time.Since(active), pendingFor-3*time.Second,
				"CrashPending had been pending %s before %s; after the restart only %s: its for state was lost", pendingFor, sig, time.Since(active))
			require.False(t, active.Before(firstActive))
		}
	}
	t.Logf("acknowledged %d samples and %d events across %d crashes", len(a.samples), len(a.events), cycles-1)
	require.Greater(t, len(a.samples), 100)
	require.Greater(t, len(a.events), 100)
}

func verifyAcked(t *testing.T, srv *binServer, a *acked, cycles int) {
	p := promClient(t, srv.url+"/api/v4/organizations/acme/prometheus", acmeRead)
	// Every acknowledged sample, with its value, and nothing else.
	v, _, _, err := p.Query(context.Background(), `crash_samples[1h]`, time.Now())
	require.NoError(t, err)
	got := map[int64]float64{}
	if m, ok := v.(interface{ Len() int }); ok && m.Len() > 0 {
		for _, s := range rangeSamples(t, v) {
			got[s.t] = s.v
		}
	}
	a.mtx.Lock()
	defer a.mtx.Unlock()
	for ts, val := range a.samples {
		gv, ok := got[ts]
		require.True(t, ok, "acknowledged sample at %d is missing after restart; log:\n%s", ts, srv.log)
		require.Equal(t, val, gv, "sample at %d", ts)
	}

	// Every acknowledged event, once, in the log and as a series.
	ids := eventIDs(t, srv, client.ListQuery{Name: "crash-event"})
	for id, n := range ids {
		require.Equal(t, 1, n, "event %s is in the log %d times", id, n)
	}
	for id := range a.events {
		require.Equal(t, 1, ids[id], "acknowledged event %s is missing from the log", id)
	}
	vec := instant(t, p, `count(count_over_time(change_events{event_name="crash-event"}[1h]))`, time.Now())
	require.Len(t, vec, 1)
	require.Equal(t, float64(len(ids)), float64(vec[0].Value), "series and log disagree")

	// The open events of every cycle so far are still active.
	vec = instant(t, p, `count(change_event_active{event_name="long-running"})`, time.Now())
	require.Len(t, vec, 1)
	require.Equal(t, float64(cycles), float64(vec[0].Value))
}

type tv struct {
	t int64
	v float64
}

func rangeSamples(t *testing.T, v any) []tv {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var m []struct {
		Values [][2]any `json:"values"`
	}
	require.NoError(t, json.Unmarshal(b, &m))
	var out []tv
	for _, s := range m {
		for _, p := range s.Values {
			sec := p[0].(float64)
			val, err := strconv.ParseFloat(p[1].(string), 64)
			require.NoError(t, err)
			out = append(out, tv{t: int64(sec*1000 + 0.5), v: val})
		}
	}
	return out
}

// pendingSince waits for the alert CrashPending to be pending and returns
// since when. With notBefore (a start), it waits until the rules had time to
// load, evaluate twice and restore their for state (Prometheus restores
// after the second evaluation).
func pendingSince(t *testing.T, srv *binServer, notBefore time.Time) time.Time {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", srv.url+"/api/v4/organizations/acme/prometheus/api/v1/alerts", nil)
		req.Header.Set("Authorization", "Bearer "+acmeRead)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var body struct {
			Data struct {
				Alerts []struct {
					Labels   map[string]string
					State    string
					ActiveAt time.Time `json:"activeAt"`
				}
			}
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		resp.Body.Close()
		for _, al := range body.Data.Alerts {
			if al.Labels["alertname"] == "CrashPending" && al.State == "pending" && (notBefore.IsZero() || time.Since(notBefore) > 6*time.Second) {
				return al.ActiveAt
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("CrashPending is not pending after 30s; log:\n%s", srv.log)
	return time.Time{}
}
