// Package shifts finds traffic shifts — a signal far above or below its own
// value a while ago, for a while — and writes them as change events, so
// that they sit beside deploys and config changes with no one sending them
// (DESIGN.md, "More change sources"; docs/sources.md).
//
// Every Interval, for every organization whose lease this process holds,
// the Detector evaluates the last Lookback of each signal's query, and of
// the same query BaselineOffset earlier, as range queries on a grid of
// Step; Detect (detect.go) turns the two matrices into shifts, Reconcile
// (plan.go) compares them with the shifts already in the event log, and
// only what is missing is written, through the change-events API's
// validation and writer. Both are pure functions; this file is the I/O.
package shifts

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/storage"
)

// EventLog is where shifts are read from and written to; *events.Service
// implements it. It is safe for concurrent use.
type EventLog interface {
	Write(ctx context.Context, org string, evs []events.Event) ([]events.Result, error)
	List(ctx context.Context, q events.ListQuery) (events.ListResult, error)
	Limits() events.Limits
	MaxDuration() time.Duration
}

// Options configure a Detector.
type Options struct {
	// Settings returns an organization's settings; ok is false when it
	// has no detector (no traffic_shifts section, or no signals).
	Settings func(org string) (s Settings, ok bool)
	// Engine runs the signals' queries over Queryable, with the
	// organization in the query's context (storage.WithOrg). A remote
	// engine's QueryEngine ignores Queryable.
	Engine    promql.QueryEngine
	Queryable promstorage.Queryable
	Events    EventLog
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// maxRecorded bounds the starts of one signal read from the log per run.
const maxRecorded = 10000

// Detector runs the detector of every organization this process holds the
// lease of. It implements lease.Worker; its methods are safe for
// concurrent use.
type Detector struct {
	logger *slog.Logger
	opts   Options
	now    func() time.Time

	mtx     sync.Mutex
	loops   map[string]*orgLoop
	stopped bool

	// started is closed by Run: no organization is evaluated before.
	started   chan struct{}
	startOnce sync.Once
	quit      chan struct{}
	quitOnce  sync.Once

	runs     *prometheus.CounterVec
	failures *prometheus.CounterVec
	open     *prometheus.GaugeVec
	written  *prometheus.CounterVec
	duration prometheus.Histogram
}

// orgLoop is the running detector of one organization.
type orgLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Detector. Organizations are started by the lease manager
// (StartOrg) and evaluated once Run is called.
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) *Detector {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	f := promauto.With(reg)
	return &Detector{
		logger:  logger,
		opts:    opts,
		now:     now,
		loops:   map[string]*orgLoop{},
		started: make(chan struct{}),
		quit:    make(chan struct{}),
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tidemark_traffic_shift_runs_total",
			Help: "Runs of the traffic-shift detector, by organization.",
		}, []string{"org"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tidemark_traffic_shift_run_failures_total",
			Help: "Runs of the traffic-shift detector in which a signal could not be queried or its events not written, by organization.",
		}, []string{"org"}),
		open: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tidemark_traffic_shifts_open",
			Help: "Traffic shifts with a start and no stop in the event log after the last run, by organization and signal.",
		}, []string{"org", "signal"}),
		written: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tidemark_traffic_shift_events_written_total",
			Help: "Traffic-shift change events written (duplicates not counted), by organization and state.",
		}, []string{"org", "state"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:                            "tidemark_traffic_shift_run_duration_seconds",
			Help:                            "Time of one run of an organization's traffic-shift detector: its queries, reading the event log and writing.",
			Buckets:                         prometheus.ExponentialBuckets(0.001, 2, 16),
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		}),
	}
}

// Run lets the organizations started be evaluated, until Stop. The server
// calls it once the storage and the event log have recovered.
func (d *Detector) Run() {
	d.startOnce.Do(func() { close(d.started) })
	<-d.quit
}

// Stop ends every organization's detector, waiting for runs in progress
// (and their writes) to finish, and Run. StartOrg does nothing after it.
func (d *Detector) Stop() {
	d.mtx.Lock()
	d.stopped = true
	loops := d.loops
	d.loops = map[string]*orgLoop{}
	d.mtx.Unlock()
	for _, l := range loops {
		l.cancel()
	}
	for _, l := range loops {
		<-l.done
	}
	d.quitOnce.Do(func() { close(d.quit) })
}

// StartOrg implements lease.Worker: org's detector runs here from now on,
// when it has one.
func (d *Detector) StartOrg(org string) {
	set, ok := d.opts.Settings(org)
	if !ok || len(set.Signals) == 0 {
		return
	}
	d.mtx.Lock()
	defer d.mtx.Unlock()
	if d.stopped || d.loops[org] != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &orgLoop{cancel: cancel, done: make(chan struct{})}
	d.loops[org] = l
	go d.loop(ctx, org, set, l.done)
}

// StopOrg implements lease.Worker: org's detector stops before it returns;
// a run in progress finishes its write first.
func (d *Detector) StopOrg(org string) {
	d.mtx.Lock()
	l := d.loops[org]
	delete(d.loops, org)
	d.mtx.Unlock()
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
	d.open.DeletePartialMatch(prometheus.Labels{"org": org})
}

func (d *Detector) loop(ctx context.Context, org string, set Settings, done chan struct{}) {
	defer close(done)
	select {
	case <-d.started:
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(set.Interval)
	defer t.Stop()
	for {
		d.Evaluate(ctx, org, set)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Evaluate runs org's detector once, at the Detector's clock, and reports
// whether every signal was evaluated and written. The loop of StartOrg
// calls it every interval; tests and benchmarks call it directly.
func (d *Detector) Evaluate(ctx context.Context, org string, set Settings) bool {
	start := time.Now()
	defer func() { d.duration.Observe(time.Since(start).Seconds()) }()
	d.runs.WithLabelValues(org).Inc()
	ok := true
	now := d.now()
	for _, sig := range set.Signals {
		open, err := d.evaluate(ctx, org, set, sig, now)
		if err != nil {
			if ctx.Err() == nil {
				d.logger.Error("evaluate traffic-shift signal", "org", org, "signal", sig.Name, "err", err)
			}
			ok = false
			continue
		}
		d.open.WithLabelValues(org, sig.Name).Set(float64(open))
	}
	if !ok {
		d.failures.WithLabelValues(org).Inc()
	}
	return ok
}

// evaluate runs one signal and returns how many of its shifts are open.
func (d *Detector) evaluate(ctx context.Context, org string, set Settings, sig Signal, now time.Time) (int, error) {
	step := set.step().Milliseconds()
	nowMS := now.UnixMilli()
	end := nowMS - nowMS%step
	n := set.Lookback.Milliseconds() / step
	start := end - n*step
	off := sig.BaselineOffset.Milliseconds()

	qctx := storage.WithOrg(ctx, org)
	observed, err := d.rangeQuery(qctx, sig.Query, start, end, step, 0)
	if err != nil {
		return 0, fmt.Errorf("query: %w", err)
	}
	baseline, err := d.rangeQuery(qctx, sig.Query, start-off, end-off, step, off)
	if err != nil {
		return 0, fmt.Errorf("query the baseline: %w", err)
	}
	series := Detect(observed, baseline, Params{
		Start: start, Step: step, Points: int(n) + 1,
		Ratio: sig.Ratio, For: sig.For.Milliseconds(), MinValue: sig.MinValue,
	})
	recorded, err := d.recorded(ctx, org, sig.Name, start-d.opts.Events.MaxDuration().Milliseconds(), nowMS)
	if err != nil {
		return 0, fmt.Errorf("read the shifts of the event log: %w", err)
	}
	plan := Reconcile(Reconciliation{Org: org, Signal: sig, WindowStart: start, Series: series, Recorded: recorded})
	lim := d.opts.Events.Limits()
	for _, w := range plan.Writes {
		evs, err := events.ValidateAll(w, now, lim)
		if err != nil {
			return 0, fmt.Errorf("shift of %s: %w", labels.FromMap(w[0].Attributes), err)
		}
		res, err := d.opts.Events.Write(ctx, org, evs)
		if err != nil {
			return 0, fmt.Errorf("write shift of %s: %w", labels.FromMap(w[0].Attributes), err)
		}
		for i, r := range res {
			if r.Duplicate {
				continue
			}
			d.written.WithLabelValues(org, string(evs[i].State)).Inc()
			d.logger.Info("traffic shift", "org", org, "signal", sig.Name, "state", evs[i].State,
				"labels", evs[i].Labels.String(), "time", time.UnixMilli(evs[i].Time).UTC().Format(time.RFC3339), "id", r.ID)
		}
	}
	return plan.Open, nil
}

// rangeQuery evaluates q from start to end (milliseconds) and returns its
// series with their points moved later by shift: the baseline's points are
// compared at the times they are the baseline of. The points are copies:
// the engine's are handed back when the query is closed.
func (d *Detector) rangeQuery(ctx context.Context, q string, start, end, step, shift int64) (promql.Matrix, error) {
	qry, err := d.opts.Engine.NewRangeQuery(ctx, d.opts.Queryable, nil, q, time.UnixMilli(start), time.UnixMilli(end), time.Duration(step)*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	m, err := res.Matrix()
	if err != nil {
		return nil, err
	}
	out := make(promql.Matrix, 0, len(m))
	for _, s := range m {
		fs := make([]promql.FPoint, len(s.Floats))
		for i, p := range s.Floats {
			fs[i] = promql.FPoint{T: p.T + shift, F: p.F}
		}
		out = append(out, promql.Series{Metric: s.Metric.Copy(), Floats: fs})
	}
	return out, nil
}

// recorded reads the signal's traffic-shift starts from since to until
// (milliseconds) from the event log.
func (d *Detector) recorded(ctx context.Context, org, signal string, since, until int64) ([]Recorded, error) {
	res, err := d.opts.Events.List(ctx, events.ListQuery{
		Org: org, Start: since, End: until, Name: EventName, Limit: maxRecorded,
		Matchers: []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, "event_state", string(events.StateStart)),
			labels.MustNewMatcher(labels.MatchEqual, SignalLabel, signal),
		},
	})
	if err != nil {
		return nil, err
	}
	if len(res.Events) == maxRecorded {
		d.logger.Warn("more traffic-shift starts in the event log than one run reads; the oldest are not compared", "org", org, "signal", signal, "read", maxRecorded)
	}
	maxDur := d.opts.Events.MaxDuration().Milliseconds()
	out := make([]Recorded, 0, len(res.Events))
	for _, e := range res.Events {
		r := Recorded{ID: e.ID, Labels: labels.FromMap(e.Labels), Start: e.Time, Open: e.Open}
		switch {
		case e.Open:
		case e.Duration != nil:
			r.End = e.Time + int64(math.Round(*e.Duration*1000))
		default:
			// Ended by the maximum duration.
			r.End = e.Time + maxDur
		}
		out = append(out, r)
	}
	return out, nil
}
