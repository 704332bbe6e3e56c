package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// ingest writes the history and recent scrapes of every series as fast as
// the system accepts them.
func ingest(ctx context.Context, p *proc, cfg modeConfig, set *seriesSet, times timeline, stageFrom int64, res *results) error {
	w, err := p.writer()
	if err != nil {
		return err
	}
	cpu0, err := procCPU(p.pid())
	if err != nil {
		return err
	}
	self0, _ := procCPU(os.Getpid())
	t0 := time.Now()
	n, err := writeSeries(ctx, w, ingestPlan{set: set, times: times, shards: cfg.shards, stageFrom: stageFrom})
	if err != nil {
		return fmt.Errorf("ingest into %s: %w", p.sys.name, err)
	}
	elapsed := time.Since(t0)
	self1, _ := procCPU(os.Getpid())
	// Until the last scrape of every series answers queries.
	want := 0
	for _, ls := range set.labels {
		if strings.HasPrefix(ls[0].Value, "http_request") {
			want++
		}
	}
	visible, err := waitQueryable(ctx, p, times[len(times)-1], want, 5*time.Minute)
	if err != nil {
		return err
	}
	// Work the write left behind (head compaction, merges) counts too:
	// wait until the process is idle, at most 30s.
	cpu1, err := settle(p.pid(), 30*time.Second)
	if err != nil {
		return err
	}
	mem, err := procMemory(p.pid())
	if err != nil {
		return err
	}
	g := "ingest"
	sys := p.sys.name
	res.set(g, "samples/s", false, sys, float64(n)/elapsed.Seconds())
	res.set(g, "last write to all series queryable (s)", true, sys, visible.Seconds())
	res.set(g, "CPU-seconds per million samples", true, sys, (cpu1-cpu0).Seconds()/(float64(n)/1e6))
	res.set(g, "peak RSS (MiB)", true, sys, float64(mem.HWM)/(1<<20))
	res.set(g, "peak RSS per active series (bytes)", true, sys, float64(mem.HWM)/float64(set.len()))
	res.note("ingest: %d series (RED label sets, 9-10 labels each), %d scrapes each = %d samples per system, %d concurrent senders of %d-sample remote-write 1.0 requests; samples/s over the write; queryable: until the last scrape of every series answers an instant query; CPU from /proc/<pid>/stat over the write and until the process idles (at most 30s after); peak RSS is VmHWM.",
		set.len(), len(times), int64(set.len())*int64(len(times)), cfg.shards, maxPerRequest)
	res.note("%s ingest: %d samples in %s; the load generator used %.1f CPU-seconds of the same machine", sys, n, elapsed.Round(time.Millisecond), (self1 - self0).Seconds())
	return nil
}

// waitQueryable polls until the sample at (ms) of want http_request*
// series answers a query, and returns how long that took.
func waitQueryable(ctx context.Context, p *proc, at int64, want int, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	q := url.Values{
		"query": {`count(last_over_time({__name__=~"http_request.*"}[1s]))`},
		"time":  {strconv.FormatFloat(float64(at)/1000, 'f', 3, 64)},
	}
	var got float64
	for time.Since(t0) < timeout {
		body, err := p.get(ctx, p.sys.queryPrefix+"/api/v1/query", q)
		if err != nil {
			return 0, fmt.Errorf("%s: count the ingested series: %w", p.sys.name, err)
		}
		if got, err = scalarResult(body); err != nil {
			return 0, fmt.Errorf("%s: count the ingested series: %w", p.sys.name, err)
		}
		if int(got) == want {
			return time.Since(t0), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: %d of %d series queryable %s after the last write", p.sys.name, int(got), want, timeout)
}

// scalarResult is the value of the one series of an instant query's
// answer, 0 when there is none.
func scalarResult(body []byte) (float64, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("decode response: %w", err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("status %q: %s", r.Status, truncate(string(body), 300))
	}
	if len(r.Data.Result) == 0 {
		return 0, nil
	}
	s, ok := r.Data.Result[0].Value[1].(string)
	if !ok {
		return 0, fmt.Errorf("value %v is not a string", r.Data.Result[0].Value[1])
	}
	return strconv.ParseFloat(s, 64)
}

// settle waits until pid has used under 5% of a core over 500ms, or
// timeout, and returns its CPU time then.
func settle(pid int, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	prev, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		cur, err := procCPU(pid)
		if err != nil {
			return 0, err
		}
		if cur-prev < 25*time.Millisecond {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// queryRange is a time range the queries run over.
type queryRange struct {
	label      string
	start, end time.Time
	step       time.Duration
	window     string
	reps       int
}

// dashboardQueries are a typical Grafana RED dashboard's panels; [$w] is
// the range's rate window.
var dashboardQueries = []struct{ name, expr string }{
	{"rate (one service)", `rate(http_requests_total{service="svc-3"}[$w])`},
	{"sum by (service, code) rate", `sum by (service, code) (rate(http_requests_total[$w]))`},
	{"error ratio by service", `sum by (service) (rate(http_requests_total{code=~"5.."}[$w])) / sum by (service) (rate(http_requests_total[$w]))`},
	{"histogram_quantile p99 by service", `histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket[$w])))`},
}

// queries runs the stage-aware canary query and the dashboard queries as
// range queries over each range, reps times after a warm-up, and records
// the p50 and p99 latency in the group "query <range>, <kind>". counts
// receives the series each query returned.
func queries(ctx context.Context, p *proc, canary string, ranges []queryRange, res *results, counts map[string]int, kind string) error {
	type q struct{ name, expr string }
	var qs []q
	qs = append(qs, q{"canary stage-aware", canary})
	for _, d := range dashboardQueries {
		qs = append(qs, q{d.name, d.expr})
	}
	for _, r := range ranges {
		for _, qq := range qs {
			expr := strings.ReplaceAll(qq.expr, "$w", r.window)
			vals := url.Values{
				"query": {expr},
				"start": {strconv.FormatInt(r.start.Unix(), 10)},
				"end":   {strconv.FormatInt(r.end.Unix(), 10)},
				"step":  {strconv.FormatFloat(r.step.Seconds(), 'f', -1, 64)},
			}
			var lat []time.Duration
			var n int
			for i := range r.reps + 1 {
				t0 := time.Now()
				body, err := p.get(ctx, p.sys.queryPrefix+"/api/v1/query_range", vals)
				d := time.Since(t0)
				if err != nil {
					return fmt.Errorf("%s: query %s over %s: %w", p.sys.name, qq.name, r.label, err)
				}
				if n, err = resultSeries(body); err != nil {
					return fmt.Errorf("%s: query %s over %s: %w", p.sys.name, qq.name, r.label, err)
				}
				if i > 0 { // The first run warms caches.
					lat = append(lat, d)
				}
			}
			g := "query " + r.label + ", " + kind
			res.set(g, qq.name+" p50 (ms)", true, p.sys.name, ms(percentile(lat, 50)))
			res.set(g, qq.name+" p99 (ms)", true, p.sys.name, ms(percentile(lat, 99)))
			counts[g+" "+qq.name] = n
		}
	}
	if kind != "cold" {
		return nil
	}
	for _, r := range ranges {
		res.note("query %s: range queries from %s to %s, step %s, rate window %s; %d runs after one warm-up (p99 of %d runs is their maximum)",
			r.label, r.start.UTC().Format(time.RFC3339), r.end.UTC().Format(time.RFC3339), dur(r.step), r.window, r.reps, r.reps)
	}
	res.note("cold: every cache off (Tidemark `--query.results-cache.max-bytes=0`; VictoriaMetrics `-search.disableCache` and `nocache=1` on every query); repeated dashboard: the same data after a restart with the caches on (Tidemark's results cache, VictoriaMetrics' rollup result cache; Prometheus has none), once the process idles after /-/ready (at most a minute), each query warmed once and repeated unchanged. RSS after the query set is the cold process's resident set right after its last query.")
	return nil
}

// resultSeries is the number of series in a Prometheus query response.
func resultSeries(body []byte) (int, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("decode response: %w", err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("status %q: %s", r.Status, truncate(string(body), 300))
	}
	return len(r.Data.Result), nil
}

// changeEvents measures change events: Tidemark through its API; a peer,
// which has no such API, gets the same events as change_events samples by
// remote write.
func changeEvents(ctx context.Context, p *proc, cfg modeConfig, res *results) error {
	g := "change events"
	sys := p.sys.name
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var w *writer
	if p.sys.eventsPath == "" {
		var err error
		if w, err = p.writer(); err != nil {
			return err
		}
	}
	// writeOne writes event i; writeBatch events from..from+n.
	writeOne := func(prefix string, i int) error {
		if w == nil {
			_, err := p.post(ctx, p.sys.eventsPath, eventJSON(prefix, i))
			return err
		}
		var enc encoder
		enc.add(eventLabels(prefix, i), time.Now().UnixMilli(), 1)
		body, err := enc.encode()
		if err != nil {
			return err
		}
		return w.store(ctx, body)
	}
	writeBatch := func(prefix string, from, n int) error {
		if w == nil {
			var b strings.Builder
			b.WriteString("[")
			for i := from; i < from+n; i++ {
				if i > from {
					b.WriteString(",")
				}
				b.WriteString(eventJSON(prefix, i))
			}
			b.WriteString("]")
			_, err := p.post(ctx, p.sys.eventsPath, b.String())
			return err
		}
		var enc encoder
		now := time.Now().UnixMilli()
		for i := from; i < from+n; i++ {
			enc.add(eventLabels(prefix, i), now, 1)
		}
		body, err := enc.encode()
		if err != nil {
			return err
		}
		return w.store(ctx, body)
	}

	// One event per request from concurrent clients.
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for range cfg.eventClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > cfg.eventsSingle {
					return
				}
				if err := writeOne("single-"+tag, i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("%s: single events: %w", sys, firstErr)
	}
	res.set(g, "single, events/s", false, sys, float64(cfg.eventsSingle)/time.Since(t0).Seconds())

	// Batches of 1000, one request at a time.
	t0 = time.Now()
	for b := range cfg.eventBatches {
		if err := writeBatch("batch-"+tag, b*1000, 1000); err != nil {
			return fmt.Errorf("%s: batched events: %w", sys, err)
		}
	}
	res.set(g, "batched (1000 per request), events/s", false, sys, float64(cfg.eventBatches*1000)/time.Since(t0).Seconds())

	// From the write's 200 to a query that returns the event.
	lat := make([]time.Duration, cfg.eventsVisible)
	next.Store(0)
	for range cfg.visibleProbes {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.eventsVisible {
					return
				}
				prefix := "visible-" + tag
				if err := writeOne(prefix, i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				acked := time.Now()
				q := url.Values{"query": {`change_events{event_name="` + prefix + "-" + strconv.Itoa(i) + `"}`}}
				for poll := 0; ; poll++ {
					body, err := p.get(ctx, p.sys.queryPrefix+"/api/v1/query", q)
					if err != nil {
						once.Do(func() { firstErr = err })
						return
					}
					if n, err := resultSeries(body); err != nil {
						once.Do(func() { firstErr = err })
						return
					} else if n > 0 {
						break
					}
					if time.Since(acked) > time.Minute {
						once.Do(func() { firstErr = fmt.Errorf("event %d not visible a minute after its write", i) })
						return
					}
					time.Sleep(min(time.Duration(poll+1)*time.Millisecond, 10*time.Millisecond))
				}
				lat[i] = time.Since(acked)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("%s: visibility: %w", sys, firstErr)
	}
	res.set(g, "200-to-visible p50 (ms)", true, sys, ms(percentile(lat, 50)))
	res.set(g, "200-to-visible p99 (ms)", true, sys, ms(percentile(lat, 99)))
	res.note("change events: Tidemark through its API (event log fsynced and samples in the WAL before the 200); Prometheus and VictoriaMetrics, which have no such API, get the same events as `change_events{event_name, event_state, service, env}` samples of value 1 by remote write. Single: %d events, one per request, from %d concurrent clients; batched: %d requests of 1000, one at a time; visible: %d events from %d concurrent probes, each polling an instant query for its event (1-10 ms apart) after the write's 200. VictoriaMetrics keeps new samples in memory buffers for seconds before they can be searched, hence its figure (measured here, not tuned).",
		cfg.eventsSingle, cfg.eventClients, cfg.eventBatches, cfg.eventsVisible, cfg.visibleProbes)
	return nil
}

// restartAfterWAL writes n new series (two scrapes each) to a fresh
// system, stops it, starts it again and measures the time until it is
// ready and until it answers a query for one of those series.
func restartAfterWAL(ctx context.Context, sys *system, dir, logPath string, cfg modeConfig, res *results) error {
	g := fmt.Sprintf("restart (%s series in the WAL)", thousands(int64(cfg.restartSeries)))
	p, err := start(sys, dir, logPath)
	if err != nil {
		return err
	}
	if _, err := p.waitReady(time.Minute); err != nil {
		p.stop()
		return err
	}
	set := redSeries(cfg.restartSeries, false)
	now := time.Now()
	w, err := p.writer()
	if err != nil {
		p.stop()
		return err
	}
	t0 := time.Now()
	n, err := writeSeries(ctx, w, ingestPlan{set: set, times: timeline{now.Add(-time.Minute).UnixMilli(), now.UnixMilli()}, shards: cfg.shards})
	if err != nil {
		p.stop()
		return fmt.Errorf("%s: write series for the restart: %w", sys.name, err)
	}
	res.set(g, "new-series write, samples/s", false, sys.name, float64(n)/time.Since(t0).Seconds())
	if err := p.stop(); err != nil {
		return err
	}
	p, err = start(sys, dir, logPath)
	if err != nil {
		return err
	}
	defer p.stop()
	ready, err := p.waitReady(30 * time.Minute)
	if err != nil {
		return err
	}
	// One of the series, to check the data came back.
	want := url.Values{"query": {seriesSelector(set.labels[len(set.labels)-1])}, "time": {strconv.FormatInt(now.Unix(), 10)}}
	for {
		body, err := p.get(ctx, sys.queryPrefix+"/api/v1/query", want)
		if err == nil {
			n, err := resultSeries(body)
			if err != nil {
				return err
			}
			if n > 0 {
				break
			}
		}
		if time.Since(p.started) > 30*time.Minute {
			return fmt.Errorf("%s: a series written before the restart is not back 30m after the restart: %v", sys.name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	answered := time.Since(p.started)
	mem, err := procMemory(p.pid())
	if err != nil {
		return err
	}
	res.set(g, "start to /-/ready (s)", true, sys.name, ready.Seconds())
	res.set(g, "start to first query answered (s)", true, sys.name, answered.Seconds())
	res.set(g, "RSS after the restart (MiB)", true, sys.name, float64(mem.RSS)/(1<<20))
	res.note("restart: %d new series with 2 samples each written to an empty data directory, stopped with SIGTERM, started again; the time runs from the new process's start to /-/ready answering 200, and to an instant query returning the last series written.", set.len())
	return nil
}

func seriesSelector(ls []prompb.Label) string {
	var b strings.Builder
	b.WriteString("{")
	for i, l := range ls {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
	}
	b.WriteString("}")
	return b.String()
}
