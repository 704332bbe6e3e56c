package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testutil"
)

// shiftTraffic generates a week-shaped request rate: a daily cycle whose
// morning ramp — from about 100 to 400 requests a second within an hour —
// is centred on 'ramp' (and every day at that time), and quieter weekends.
type shiftTraffic struct {
	ramp time.Time
	rng  *rand.Rand
}

func (g shiftTraffic) rate(t time.Time) float64 {
	day := 24 * time.Hour
	// Hours since the ramp, in [-6, 18).
	h := float64(((t.Sub(g.ramp)+6*time.Hour)%day+day)%day)/float64(time.Hour) - 6
	sigmoid := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	v := 100 * (1 + 3*sigmoid(6*h) - 3*sigmoid(6*(h-12)))
	if d := int(math.Floor(float64(t.Sub(g.ramp)) / float64(day))); ((d%7)+7)%7 >= 5 {
		v *= 0.6
	}
	return v * (1 + 0.1*(g.rng.Float64()-0.5))
}

// shiftService is one service's http_requests_total, scraped every minute.
type shiftService struct {
	name   string
	factor func(t time.Time) float64
	total  float64
	next   time.Time
}

// samples advances the counter up to (not including) until.
func (s *shiftService) samples(g shiftTraffic, until time.Time) testutil.Series {
	out := testutil.Series{Labels: labels.FromStrings("__name__", "http_requests_total", "service", s.name)}
	for ; s.next.Before(until); s.next = s.next.Add(time.Minute) {
		r := g.rate(s.next)
		if s.factor != nil {
			r *= s.factor(s.next)
		}
		s.total += r * 60
		out.Samples = append(out.Samples, testutil.Sample{T: s.next.UnixMilli(), V: s.total})
	}
	return out
}

// during is a factor f from 'from' to 'to', 1 elsewhere.
func during(f float64, from, to time.Time) func(time.Time) float64 {
	return func(t time.Time) float64 {
		if !t.Before(from) && t.Before(to) {
			return f
		}
		return 1
	}
}

// writeServices remote-writes the services' samples up to until, a day at
// a time, oldest first.
func writeServices(t *testing.T, url string, g shiftTraffic, svcs []*shiftService, until time.Time) {
	c := testutil.WriteClient(t, url, acmeWrite, false, false)
	for {
		var batch []testutil.Series
		for _, s := range svcs {
			end := s.next.Add(24 * time.Hour)
			if end.After(until) {
				end = until
			}
			if ser := s.samples(g, end); len(ser.Samples) > 0 {
				batch = append(batch, ser)
			}
		}
		if len(batch) == 0 {
			return
		}
		_, err := c.Store(context.Background(), testutil.EncodeV1(t, batch), 0)
		require.NoError(t, err)
	}
}

// shiftEvent is a traffic-shift event as the events API lists it.
type shiftEvent struct {
	ID        string            `json:"id"`
	State     string            `json:"event_state"`
	Timestamp time.Time         `json:"timestamp"`
	Labels    map[string]string `json:"labels"`
	Metadata  map[string]any    `json:"metadata"`
	PairID    string            `json:"pair_id"`
	Open      bool              `json:"open"`
}

// shiftEvents lists acme's traffic-shift events by service.
func shiftEvents(t *testing.T, srv *binServer) map[string][]shiftEvent {
	req, _ := http.NewRequest("GET", srv.url+"/api/v4/organizations/acme/change_events?event_name=traffic-shift&limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+acmeRead)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var page struct{ Events []shiftEvent }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	out := map[string][]shiftEvent{}
	for _, e := range page.Events {
		out[e.Labels["service"]] = append(out[e.Labels["service"]], e)
	}
	for _, evs := range out {
		sort.Slice(evs, func(i, j int) bool { return evs[i].Timestamp.Before(evs[j].Timestamp) })
	}
	return out
}

// selfMetric is the value of one series of /metrics, by its exact text
// (name{labels}), or -1 when it is not there.
func selfMetric(t *testing.T, srv *binServer, series string) float64 {
	resp, err := http.Get(srv.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return -1
}

// waitRuns waits until the detector has run n more times, so that it has
// seen everything written before the call.
func waitRuns(t *testing.T, srv *binServer, n float64) {
	const runs = `tidemark_traffic_shift_runs_total{org="acme"}`
	from := max(selfMetric(t, srv, runs), 0)
	require.Eventually(t, func() bool { return selfMetric(t, srv, runs) >= from+n }, 30*time.Second, 100*time.Millisecond,
		"the detector did not run %v times; log:\n%s", n, srv.log)
}

// TestTrafficShiftsEndToEnd runs the real binary's detector over a week and
// a day of generated traffic with a daily cycle: a 3x surge of 15 minutes
// is one shift up, a 70% drop one shift down, the cycle alone none, and a
// shift open across a restart is neither written twice nor lost.
func TestTrafficShiftsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tidemark.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
organizations:
  - slug: acme
    tokens:
      - {name: grafana, scope: read, value: `+acmeRead+`}
      - {name: prometheus, scope: write, value: `+acmeWrite+`}
traffic_shifts:
  interval: 1s
  lookback: 1h
  step: 30s
  signals:
    - name: request-rate
      query: 'sum by (service) (rate(http_requests_total[5m]))'
      baseline_offset: 1w
      ratio: 2
      for: 5m
`), 0o644))
	// A week and a day of samples, then the last hour's shifts compared
	// with a week before.
	srv := startServer(t, dir, "--config.file="+cfg, "--storage.out-of-order-window=9d")
	writeURL := srv.url + "/api/v4/organizations/acme/prometheus/api/v1/write"

	now := time.Now().Truncate(time.Minute)
	g := shiftTraffic{ramp: now.Add(-30 * time.Minute), rng: rand.New(rand.NewPCG(7, 11))}
	begin := now.Add(-8 * 24 * time.Hour)
	surgeAt, dropAt := now.Add(-45*time.Minute), now.Add(-45*time.Minute)
	// The restart service's surge is still going where its data stops
	// for now, 10 minutes ago.
	restartAt, restartData := now.Add(-25*time.Minute), now.Add(-10*time.Minute)
	steady := &shiftService{name: "steady", next: begin}
	surge := &shiftService{name: "surge", next: begin, factor: during(3, surgeAt, surgeAt.Add(15*time.Minute))}
	drop := &shiftService{name: "drop", next: begin, factor: during(0.3, dropAt, dropAt.Add(15*time.Minute))}
	restart := &shiftService{name: "restart", next: begin, factor: during(3, restartAt, restartData)}
	writeServices(t, writeURL, g, []*shiftService{steady, surge, drop}, now.Add(time.Minute))
	writeServices(t, writeURL, g, []*shiftService{restart}, restartData)
	waitRuns(t, srv, 3)

	checkPair := func(evs []shiftEvent, service, direction string, from time.Time) {
		t.Helper()
		require.Len(t, evs, 2, "%s: one start and one stop: %+v", service, evs)
		start, stop := evs[0], evs[1]
		require.Equal(t, "start", start.State)
		require.Equal(t, "stop", stop.State)
		want := map[string]string{"service": service, "signal": "request-rate", "direction": direction}
		require.Equal(t, want, start.Labels)
		require.Equal(t, want, stop.Labels)
		require.Equal(t, start.ID, stop.PairID, "the stop pairs with the start")
		require.False(t, start.Open)
		// rate[5m] moves past the ratio a few minutes into the change and
		// back a few minutes after it.
		require.WithinRange(t, start.Timestamp, from, from.Add(5*time.Minute), service)
		require.WithinRange(t, stop.Timestamp, from.Add(15*time.Minute), from.Add(20*time.Minute), service)
		for _, k := range []string{"observed", "baseline", "ratio"} {
			require.Contains(t, start.Metadata, k)
			require.Contains(t, stop.Metadata, k)
		}
		ratio := start.Metadata["ratio"].(float64)
		if direction == "up" {
			require.GreaterOrEqual(t, ratio, 2.0)
		} else {
			require.LessOrEqual(t, ratio, 0.5)
		}
	}
	evs := shiftEvents(t, srv)
	checkPair(evs["surge"], "surge", "up", surgeAt)
	checkPair(evs["drop"], "drop", "down", dropAt)
	require.Empty(t, evs["steady"], "the daily cycle alone is no shift")
	require.Len(t, evs["restart"], 1, "the restart service's shift is open: %+v", evs["restart"])
	openStart := evs["restart"][0]
	require.Equal(t, "start", openStart.State)
	require.True(t, openStart.Open)
	require.Equal(t, "up", openStart.Labels["direction"])
	require.Equal(t, 1.0, selfMetric(t, srv, `tidemark_traffic_shifts_open{org="acme",signal="request-rate"}`))

	// A restart while the shift is open: nothing written twice.
	srv.restart()
	waitRuns(t, srv, 3)
	evs = shiftEvents(t, srv)
	require.Len(t, evs["restart"], 1, "no second start after the restart: %+v", evs["restart"])
	require.Equal(t, openStart.ID, evs["restart"][0].ID)
	require.Len(t, evs["surge"], 2)
	require.Len(t, evs["drop"], 2)

	// The rest of its data, normal again, arrives: the stop is written,
	// paired with the start written before the restart.
	writeServices(t, writeURL, g, []*shiftService{restart}, time.Now())
	waitRuns(t, srv, 3)
	evs = shiftEvents(t, srv)
	require.Len(t, evs["restart"], 2, "the stop after the restart: %+v", evs["restart"])
	require.Equal(t, openStart.ID, evs["restart"][1].PairID)
	require.WithinRange(t, evs["restart"][1].Timestamp, restartData, restartData.Add(5*time.Minute))
	checkPair(evs["surge"], "surge", "up", surgeAt)
	checkPair(evs["drop"], "drop", "down", dropAt)
	require.Empty(t, evs["steady"])
	require.Equal(t, 0.0, selfMetric(t, srv, `tidemark_traffic_shifts_open{org="acme",signal="request-rate"}`))
	require.Equal(t, 1.0, selfMetric(t, srv, `tidemark_traffic_shift_events_written_total{org="acme",state="stop"}`),
		"this process wrote only the stop")
	require.Equal(t, -1.0, selfMetric(t, srv, `tidemark_traffic_shift_events_written_total{org="acme",state="start"}`),
		"this process wrote no start")
	require.Equal(t, -1.0, selfMetric(t, srv, `tidemark_traffic_shift_run_failures_total{org="acme"}`), "no run failed; log:\n%s", srv.log)
}
