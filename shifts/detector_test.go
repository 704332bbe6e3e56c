package shifts_test

import (
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/shifts"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

const week = 7 * 24 * time.Hour

// stack is a detector over real parts: an organization's TSDB, Prometheus's
// engine and the event service over SQLite.
type stack struct {
	t       testing.TB
	backend storage.Backend
	events  *events.Service
	engine  promql.QueryEngine

	mtx sync.Mutex
	now time.Time
}

func newStack(t testing.TB) *stack {
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "state.db"))
	require.NoError(t, err)
	require.NoError(t, db.CreateOrg(context.Background(), "acme"))
	logger := slog.New(slog.DiscardHandler)
	backend := storage.NewEmbedded(logger, nil, storage.EmbeddedOptions{
		Dir: filepath.Join(dir, "tsdb"), Retention: 15 * 24 * time.Hour, OutOfOrderWindow: 9 * 24 * time.Hour,
	})
	evs := events.NewService(logger, prometheus.NewRegistry(), db, backend, events.Options{})
	require.NoError(t, evs.Recover(context.Background()))
	go evs.Run()
	t.Cleanup(func() {
		evs.Stop()
		backend.Close()
		db.Close()
	})
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	return &stack{t: t, backend: backend, events: evs, engine: engine}
}

func (s *stack) clock() time.Time {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	return s.now
}

func (s *stack) setNow(t time.Time) {
	s.mtx.Lock()
	s.now = t
	s.mtx.Unlock()
}

// detector is a new detector, as after a restart: the same log, nothing
// else kept.
func (s *stack) detector(reg prometheus.Registerer) *shifts.Detector {
	return shifts.New(slog.New(slog.DiscardHandler), reg, shifts.Options{
		Settings:  func(string) (shifts.Settings, bool) { return shifts.Settings{}, false },
		Engine:    s.engine,
		Queryable: storage.Routed{Backend: s.backend},
		Events:    s.events,
		Now:       s.clock,
	})
}

// rate is a request rate at t: a daily cycle, times factor.
type rate func(t time.Time) float64

func dailyCycle(t time.Time) float64 {
	h := float64(t.UTC().Hour()) + float64(t.UTC().Minute())/60
	return 50 * (2 + math.Sin(2*math.Pi*h/24))
}

// times multiplies r by f during [from, to).
func times(r rate, f float64, from, to time.Time) rate {
	return func(t time.Time) float64 {
		if !t.Before(from) && t.Before(to) {
			return f * r(t)
		}
		return r(t)
	}
}

// counter appends http_requests_total{service} from 'from' to 'to' every
// 15s, its increase following r, continuing from total.
func (s *stack) counter(service string, r rate, from, to time.Time, total float64) float64 {
	org, err := s.backend.Org("acme")
	require.NoError(s.t, err)
	app := org.AppenderV2(context.Background())
	ls := labels.FromStrings("__name__", "http_requests_total", "service", service)
	for t := from; t.Before(to); t = t.Add(15 * time.Second) {
		total += r(t) * 15
		_, err := app.Append(0, ls, 0, t.UnixMilli(), total, nil, nil, promstorage.AOptions{})
		require.NoError(s.t, err)
	}
	require.NoError(s.t, app.Commit())
	return total
}

// history appends a service's counter for the two spans a run at 'at' and
// the runs after it until 'until' read: the lookback now and a week ago.
func (s *stack) history(service string, r rate, at, until time.Time) {
	s.counter(service, r, at.Add(-week-70*time.Minute), until.Add(-week), 0)
	s.counter(service, r, at.Add(-70*time.Minute), until, 0)
}

var settings = shifts.Settings{
	Interval: 30 * time.Second,
	Lookback: time.Hour,
	Signals: []shifts.Signal{{
		Name: "request-rate", Query: `sum by (service) (rate(http_requests_total[5m]))`,
		BaselineOffset: week, Ratio: 2, For: 5 * time.Minute,
	}},
}

// shiftEvents are the organization's traffic-shift events as
// "<direction> <service> <state>", with the stops' pairs checked.
func (s *stack) shiftEvents() []string {
	res, err := s.events.List(context.Background(), events.ListQuery{Org: "acme", Start: 0, End: math.MaxInt64, Name: shifts.EventName, Limit: 1000})
	require.NoError(s.t, err)
	out := []string{}
	for _, e := range res.Events {
		require.Equal(s.t, "request-rate", e.Labels["signal"])
		out = append(out, e.Labels["direction"]+" "+e.Labels["service"]+" "+e.State)
		if e.State == "stop" {
			require.NotEmpty(s.t, e.PairID, "stop %s pairs with a start", e.ID)
		}
	}
	sort.Strings(out)
	return out
}

func TestDetector(t *testing.T) {
	s := newStack(t)
	// A run a little in the past, so that every event is before the
	// event service's own clock.
	at := time.Now().Add(-3 * time.Hour).Truncate(time.Minute)
	until := at.Add(2 * time.Hour)
	s.history("steady", dailyCycle, at, until)
	s.history("surge", times(dailyCycle, 3, at.Add(-40*time.Minute), at.Add(-25*time.Minute)), at, until)
	s.history("drop", times(dailyCycle, 0.3, at.Add(-40*time.Minute), at.Add(-25*time.Minute)), at, until)
	// A surge still going at 'at', that ends 80 minutes later.
	s.history("long", times(dailyCycle, 3, at.Add(-20*time.Minute), at.Add(80*time.Minute)), at, until)

	reg := prometheus.NewRegistry()
	d := s.detector(reg)
	s.setNow(at)
	require.True(t, d.Evaluate(context.Background(), "acme", settings))
	want := []string{"down drop start", "down drop stop", "up long start", "up surge start", "up surge stop"}
	require.Equal(t, want, s.shiftEvents())
	require.Equal(t, 1.0, metric(t, reg, "tidemark_traffic_shifts_open"))
	require.Equal(t, 3.0, metric(t, reg, "tidemark_traffic_shift_events_written_total", "state", "start"))
	require.Equal(t, 2.0, metric(t, reg, "tidemark_traffic_shift_events_written_total", "state", "stop"))

	// The same run again, and after a restart: nothing more.
	require.True(t, d.Evaluate(context.Background(), "acme", settings))
	d = s.detector(prometheus.NewRegistry())
	require.True(t, d.Evaluate(context.Background(), "acme", settings))
	require.Equal(t, want, s.shiftEvents())

	// Later, with the long shift's start out of the lookback: no second
	// start; and its end, after another restart.
	s.setNow(at.Add(70 * time.Minute))
	require.True(t, d.Evaluate(context.Background(), "acme", settings))
	require.Equal(t, want, s.shiftEvents())
	reg = prometheus.NewRegistry()
	d = s.detector(reg)
	s.setNow(at.Add(100 * time.Minute))
	require.True(t, d.Evaluate(context.Background(), "acme", settings))
	want = []string{"down drop start", "down drop stop", "up long start", "up long stop", "up surge start", "up surge stop"}
	require.Equal(t, want, s.shiftEvents())
	require.True(t, d.Evaluate(context.Background(), "acme", settings))
	require.Equal(t, want, s.shiftEvents())
	require.Equal(t, 0.0, metric(t, reg, "tidemark_traffic_shifts_open"))
	require.Equal(t, 1.0, metric(t, reg, "tidemark_traffic_shift_events_written_total", "state", "stop"))
	require.Equal(t, 2.0, metric(t, reg, "tidemark_traffic_shift_runs_total"))
}

// metric is the value of the one series of name in reg with the labels
// given (besides org="acme"), summed.
func metric(t testing.TB, reg *prometheus.Registry, name string, lbls ...string) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	want := map[string]string{"org": "acme"}
	for i := 0; i < len(lbls); i += 2 {
		want[lbls[i]] = lbls[i+1]
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestDetectorLease: an organization's loop runs from StartOrg, once Run
// is called, until StopOrg; Stop ends everything, and StartOrg does
// nothing after it.
func TestDetectorLease(t *testing.T) {
	s := newStack(t)
	s.setNow(time.Now())
	reg := prometheus.NewRegistry()
	set := settings
	set.Interval = time.Second
	d := shifts.New(slog.New(slog.DiscardHandler), reg, shifts.Options{
		Settings: func(org string) (shifts.Settings, bool) { return set, org == "acme" },
		Engine:   s.engine, Queryable: storage.Routed{Backend: s.backend}, Events: s.events, Now: s.clock,
	})
	d.StartOrg("acme")
	d.StartOrg("globex") // no settings: nothing runs
	time.Sleep(100 * time.Millisecond)
	require.Zero(t, metric(t, reg, "tidemark_traffic_shift_runs_total"), "nothing runs before Run")

	done := make(chan struct{})
	go func() { d.Run(); close(done) }()
	require.Eventually(t, func() bool { return metric(t, reg, "tidemark_traffic_shift_runs_total") >= 2 }, 10*time.Second, 20*time.Millisecond)
	require.Zero(t, metric(t, reg, "tidemark_traffic_shift_run_failures_total"))
	d.StopOrg("acme")
	runs := metric(t, reg, "tidemark_traffic_shift_runs_total")
	time.Sleep(1500 * time.Millisecond)
	require.Equal(t, runs, metric(t, reg, "tidemark_traffic_shift_runs_total"), "no run after StopOrg")

	d.StartOrg("acme")
	require.Eventually(t, func() bool { return metric(t, reg, "tidemark_traffic_shift_runs_total") > runs }, 10*time.Second, 20*time.Millisecond)
	d.Stop()
	<-done
	d.StopOrg("acme")
	d.StartOrg("acme")
	runs = metric(t, reg, "tidemark_traffic_shift_runs_total")
	time.Sleep(1500 * time.Millisecond)
	require.Equal(t, runs, metric(t, reg, "tidemark_traffic_shift_runs_total"), "no run after Stop")
}
