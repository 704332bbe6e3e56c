// Package impact scores every change event on the golden signals of what it
// changed: once its after window has passed, each signal's query, with the
// event's labels as matchers, is compared before against after with the
// canary judge's statistics (compare.go), and the verdict is stored in the
// state's impact log and written as series (docs/impact.md).
//
// Which events are still to score is read from the log (state.ImpactLog),
// so the scoring of an organization is done by whichever process holds its
// lease (Service is a lease.Worker), and a process that starts scores what
// was missed while none ran. The queries go through the PromQL engine the
// server hands in: Prometheus's over the embedded storage, or the remote
// engine's API.
package impact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/judge"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// Store is the state the service reads and writes; *state.DB implements
// it. It is safe for concurrent use.
type Store interface {
	state.ImpactLog
	EventBySeq(ctx context.Context, seq int64) (state.EventRow, error)
	EventByID(ctx context.Context, org, id string) (state.EventRow, error)
}

// Options configure a Service.
type Options struct {
	Store Store
	// Backend is where the impact series are written.
	Backend storage.Backend
	Scorer  *Scorer
	// Settings returns an organization's checked settings; nil: the
	// defaults for every organization.
	Settings func(org string) *Settings
	// Interval is how often the log is read for events that are due
	// (DefaultInterval when 0).
	Interval time.Duration
	// Horizon is how far back events are still scored (DefaultHorizon
	// when 0): a process that starts after a long stop scores what is
	// newer.
	Horizon time.Duration
	// Concurrency is how many events are scored at once (1 when 0). Each
	// scorer rests after an event as long as it took to score it.
	Concurrency int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultInterval = 15 * time.Second
	// DefaultHorizon is the events' default backfill window (an older
	// event is refused) and a day more.
	DefaultHorizon = 8 * 24 * time.Hour
)

// Limits of one pass over an organization's log.
const (
	pageSize = 500
	// batchSize results are stored (and their series written) at once:
	// few enough that the transaction holds the state's write lock
	// briefly, since event writes wait for it.
	batchSize = 20
	// maxPerPass events are scored in one pass; the next pass follows at
	// once.
	maxPerPass = 1000
	// maxRetryDelay bounds the wait before an event whose scoring failed
	// is tried again.
	maxRetryDelay = 10 * time.Minute
)

// Errors of ScoreEvent.
var (
	// ErrNotFound: the organization has no event of that id.
	ErrNotFound = errors.New("no change event has that id")
	// ErrNotScored: the event is not one that is scored.
	ErrNotScored = errors.New("the change event is not scored")
)

// Service scores the change events of the organizations it holds. Its
// methods are safe for concurrent use.
type Service struct {
	logger *slog.Logger
	opts   Options

	mtx  sync.Mutex
	orgs map[string]*orgWork

	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	started  atomic.Bool

	provisional provisionalCache

	scored   *prometheus.CounterVec
	noData   prometheus.Counter
	failures prometheus.Counter
	duration prometheus.Histogram
	pending  prometheus.Gauge
}

// orgWork is the scoring of one organization held here.
type orgWork struct {
	slug   string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Owned by the pass, which runs one at a time.
	// watermark: every start with a seq up to it is scored or skipped.
	watermark int64
	pending   int
	retries   map[int64]retry
}

type retry struct {
	attempts int
	next     time.Time
}

// New returns a Service; Run scores, StartOrg and StopOrg say for which
// organizations.
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) *Service {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Horizon <= 0 {
		opts.Horizon = DefaultHorizon
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Settings == nil {
		def := DefaultSettings()
		opts.Settings = func(string) *Settings { return &def }
	}
	f := promauto.With(reg)
	return &Service{
		logger:      logger,
		opts:        opts,
		orgs:        map[string]*orgWork{},
		wake:        make(chan struct{}, 1),
		quit:        make(chan struct{}),
		done:        make(chan struct{}),
		provisional: provisionalCache{entries: map[provisionalKey]provisionalEntry{}},
		scored: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tidemark_impact_events_scored_total",
			Help: "Change events scored on their signals and stored, by verdict.",
		}, []string{"verdict"}),
		noData: f.NewCounter(prometheus.CounterOpts{
			Name: "tidemark_impact_signals_no_data_total",
			Help: "Signals of scored change events that had too few values before or after to compare.",
		}),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "tidemark_impact_scoring_failures_total",
			Help: "Scorings of a change event that failed (the engine or the state did not answer) and are tried again.",
		}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "tidemark_impact_scoring_duration_seconds",
			Help:    "Time to score one change event: its signals' queries and their comparison.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		pending: f.NewGauge(prometheus.GaugeOpts{
			Name: "tidemark_impact_events_pending",
			Help: "Change events of the organizations held here whose after window has not passed.",
		}),
	}
}

// StartOrg implements lease.Worker: org's events are scored here from now
// on.
func (s *Service) StartOrg(org string) {
	s.mtx.Lock()
	if _, ok := s.orgs[org]; !ok {
		ctx, cancel := context.WithCancel(context.Background())
		s.orgs[org] = &orgWork{slug: org, ctx: ctx, cancel: cancel, retries: map[int64]retry{}}
	}
	s.mtx.Unlock()
	s.poke()
}

// StopOrg implements lease.Worker: org's scoring stops before it returns
// (a scoring in progress is cancelled; what it stored stays).
func (s *Service) StopOrg(org string) {
	s.mtx.Lock()
	o := s.orgs[org]
	delete(s.orgs, org)
	s.mtx.Unlock()
	if o == nil {
		return
	}
	o.cancel()
	o.wg.Wait()
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run scores due events every Interval until Stop.
func (s *Service) Run() {
	s.started.Store(true)
	defer close(s.done)
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		more := s.Pass()
		if more {
			select {
			case <-s.quit:
				return
			default:
				continue
			}
		}
		select {
		case <-s.quit:
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Stop ends Run and waits for it. Scorings in progress are cancelled.
func (s *Service) Stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	s.mtx.Lock()
	orgs := make([]*orgWork, 0, len(s.orgs))
	for _, o := range s.orgs {
		orgs = append(orgs, o)
	}
	s.mtx.Unlock()
	for _, o := range orgs {
		o.cancel()
	}
	if s.started.Load() {
		<-s.done
	}
}

// Pass scores what is due in every organization held, once. It reports
// whether some organization has more due than one pass scores. Run calls
// it; tests call it directly.
func (s *Service) Pass() (more bool) {
	s.mtx.Lock()
	orgs := make([]*orgWork, 0, len(s.orgs))
	for _, o := range s.orgs {
		o.wg.Add(1)
		orgs = append(orgs, o)
	}
	s.mtx.Unlock()
	pending := 0
	for _, o := range orgs {
		m, err := s.pass(o)
		if err != nil && o.ctx.Err() == nil {
			s.logger.Error("score change events", "org", o.slug, "err", err)
		}
		more = more || m
		pending += o.pending
		o.wg.Done()
	}
	s.pending.Set(float64(pending))
	return more
}

// due is a start to score now.
type due struct {
	row state.EventRow
	c   Change
}

// commitGrace is how long after a row was received a row with a lower seq
// may still commit (another writer's transaction in flight).
const commitGrace = time.Minute

// pass reads the organization's unscored starts past its watermark,
// scores those that are due and stores the results, and moves the
// watermark past what is done.
func (s *Service) pass(o *orgWork) (more bool, err error) {
	ctx := o.ctx
	now := s.opts.Now()
	set := s.opts.Settings(o.slug)
	minTS := now.Add(-s.opts.Horizon).UnixMilli()

	var toScore []due
	var skipped []state.ImpactRow
	firstWaiting := int64(0) // seq of the first start not done, 0: none
	wait := func(seq int64) {
		if firstWaiting == 0 {
			firstWaiting = seq
		}
	}
	cursor := o.watermark
	o.pending = 0
	for {
		rows, err := s.opts.Store.UnscoredStarts(ctx, state.UnscoredQuery{Org: o.slug, AfterSeq: cursor, MinTS: minTS, Limit: pageSize})
		if err != nil {
			return false, err
		}
		for _, row := range rows {
			cursor = row.Seq
			if now.Sub(time.UnixMilli(row.ReceivedAt)) < commitGrace {
				// With several writers, seqs may commit out of order: a
				// lower one may still appear. The watermark stays below
				// recent rows, so it is read then.
				wait(row.Seq)
			}
			c, ok := s.change(row, set)
			switch {
			case !ok:
				skipped = append(skipped, state.ImpactRow{Seq: row.Seq, Org: o.slug, ScoredAt: now.UnixMilli()})
			case now.Before(set.Due(c)):
				o.pending++
				wait(row.Seq)
			case len(toScore) >= maxPerPass:
				more = true
				wait(row.Seq)
			case now.Before(o.retries[row.Seq].next):
				wait(row.Seq)
			default:
				toScore = append(toScore, due{row: row, c: c})
			}
		}
		if len(rows) < pageSize {
			break
		}
	}

	done := s.scoreAll(ctx, o, set, toScore, skipped, now)
	// The watermark moves up to the first start that is not stored.
	for _, d := range toScore {
		if !done[d.row.Seq] {
			wait(d.row.Seq)
		}
	}
	for _, r := range skipped {
		if !done[r.Seq] {
			wait(r.Seq)
		}
	}
	if firstWaiting != 0 {
		o.watermark = max(o.watermark, firstWaiting-1)
	} else {
		o.watermark = max(o.watermark, cursor)
	}
	return more, nil
}

// change reads a start of the log as a change to score; false when it is
// not scored: it has none of the match labels, no signals apply, or it is
// the judge's record of an analysis, not a change.
func (s *Service) change(row state.EventRow, set *Settings) (Change, bool) {
	var m map[string]string
	if err := json.Unmarshal([]byte(row.Labels), &m); err != nil {
		s.logger.Error("read the labels of a change event", "org", row.Org, "id", row.ID, "err", err)
		return Change{}, false
	}
	c := Change{Seq: row.Seq, ID: row.ID, Name: row.Name, Time: row.TS, Labels: labels.FromMap(m)}
	if row.PairSeq.Valid && row.DurationMS.Valid {
		c.Stop = row.TS + row.DurationMS.Int64
	}
	if row.Name == judge.AnalysisEventName || !set.Scored(c.Labels) {
		return c, false
	}
	return c, true
}

// scored is one change's result on its way to the state.
type scoredChange struct {
	c   Change
	imp *events.Impact
}

// scoreAll scores the due starts, Concurrency at a time, and stores the
// results in batches, the skipped rows with the first. It returns the seqs
// stored; a start whose scoring failed is tried again after a delay that
// grows with its attempts.
func (s *Service) scoreAll(ctx context.Context, o *orgWork, set *Settings, toScore []due, skipped []state.ImpactRow, now time.Time) map[int64]bool {
	stored := map[int64]bool{}
	rows := skipped
	for i := 0; i < len(toScore) || len(rows) > 0; i += batchSize {
		part := toScore[min(i, len(toScore)):min(i+batchSize, len(toScore))]
		batch := s.scoreBatch(ctx, o, set, part, now)
		if err := s.store(ctx, o.slug, batch, rows); err != nil {
			if ctx.Err() == nil {
				s.logger.Error("store the impact of change events", "org", o.slug, "events", len(batch), "err", err)
				s.failures.Add(float64(len(batch)))
			}
			return stored
		}
		for _, r := range rows {
			stored[r.Seq] = true
		}
		for _, r := range batch {
			stored[r.c.Seq] = true
			delete(o.retries, r.c.Seq)
		}
		rows = nil
	}
	return stored
}

// scoreBatch scores changes, Concurrency at a time, and returns those
// that were scored, in order.
func (s *Service) scoreBatch(ctx context.Context, o *orgWork, set *Settings, part []due, now time.Time) []*scoredChange {
	results := make([]*scoredChange, len(part))
	sem := make(chan struct{}, s.opts.Concurrency)
	var wg sync.WaitGroup
	for j, d := range part {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if imp, err := s.scoreOne(ctx, o.slug, set, d.c, now); err == nil {
				results[j] = &scoredChange{c: d.c, imp: imp}
			}
		})
	}
	wg.Wait()
	out := make([]*scoredChange, 0, len(part))
	for j, r := range results {
		if r != nil {
			out = append(out, r)
			continue
		}
		if ctx.Err() == nil {
			rt := o.retries[part[j].row.Seq]
			rt.attempts++
			rt.next = now.Add(min(s.opts.Interval<<min(rt.attempts, 10), maxRetryDelay))
			o.retries[part[j].row.Seq] = rt
		}
	}
	return out
}

// scoreOne scores one change, with its metrics.
func (s *Service) scoreOne(ctx context.Context, org string, set *Settings, c Change, now time.Time) (*events.Impact, error) {
	start := time.Now()
	imp, err := s.opts.Scorer.Score(ctx, org, set, c, now)
	took := time.Since(start)
	s.duration.Observe(took.Seconds())
	// Rest as long as the work took: a burst of scoring takes at most
	// half a core (per Concurrency) from the writes and queries that
	// clients wait for.
	select {
	case <-ctx.Done():
	case <-time.After(took):
	}
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("score a change event", "org", org, "id", c.ID, "event_name", c.Name, "err", err)
			s.failures.Inc()
		}
		return nil, err
	}
	return imp, nil
}

// store writes the series of the scored changes, then their rows and the
// skipped ones: a crash in between scores them again, which writes their
// series twice, never not at all.
func (s *Service) store(ctx context.Context, org string, batch []*scoredChange, skipped []state.ImpactRow) error {
	if len(batch) > 0 {
		if err := s.writeSeries(ctx, org, batch); err != nil {
			return err
		}
	}
	rows := skipped
	for _, r := range batch {
		body, err := json.Marshal(r.imp)
		if err != nil {
			return err
		}
		at, _ := time.Parse(time.RFC3339Nano, r.imp.ScoredAt)
		rows = append(rows, state.ImpactRow{Seq: r.c.Seq, Org: org, Verdict: r.imp.Verdict, ScoredAt: at.UnixMilli(), Body: string(body)})
	}
	if err := s.opts.Store.AddImpacts(ctx, rows); err != nil {
		return err
	}
	for _, r := range batch {
		s.count(r.imp)
	}
	return nil
}

func (s *Service) count(imp *events.Impact) {
	s.scored.WithLabelValues(imp.Verdict).Inc()
	for _, si := range imp.Signals {
		if si.Verdict == events.VerdictNoData {
			s.noData.Inc()
		}
	}
}

// ScoreEvent scores the event id of org now, on demand. A start (or point
// event) whose after window has passed is stored, replacing an earlier
// score, and its series are written; one whose window has not is scored
// provisionally over what has passed, and not stored. A stop is scored as
// its start. Errors: ErrNotFound, ErrNotScored (wrapped, with the reason),
// or the engine's or the state's.
func (s *Service) ScoreEvent(ctx context.Context, org, id string) (*events.Impact, error) {
	row, err := s.opts.Store.EventByID(ctx, org, id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	if row.State != string(events.StateStart) {
		if !row.PairSeq.Valid {
			return nil, fmt.Errorf("%w: %q is a stop that found no start; starts and point events are scored", ErrNotScored, id)
		}
		if row, err = s.opts.Store.EventBySeq(ctx, row.PairSeq.Int64); err != nil {
			return nil, err
		}
	}
	set := s.opts.Settings(org)
	c, ok := s.change(row, set)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotScored, notScoredReason(row, c, set))
	}
	now := s.opts.Now()
	imp, err := s.opts.Scorer.Score(ctx, org, set, c, now)
	if err != nil {
		return nil, err
	}
	if imp.Provisional {
		return imp, nil
	}
	sc := &scoredChange{c: c, imp: imp}
	if err := s.writeSeries(ctx, org, []*scoredChange{sc}); err != nil {
		return nil, err
	}
	body, err := json.Marshal(imp)
	if err != nil {
		return nil, err
	}
	if err := s.opts.Store.PutImpact(ctx, state.ImpactRow{Seq: c.Seq, Org: org, Verdict: imp.Verdict, ScoredAt: now.UnixMilli(), Body: string(body)}); err != nil {
		return nil, err
	}
	s.count(imp)
	return imp, nil
}

func notScoredReason(row state.EventRow, c Change, set *Settings) string {
	switch {
	case row.Name == judge.AnalysisEventName:
		return fmt.Sprintf("%q records a canary analysis, which is not a change", row.Name)
	case len(set.Signals) == 0:
		return "the organization's impact settings have no signals"
	}
	return fmt.Sprintf("the event has none of the labels that tie it to signals (match_labels: %v); its labels are %s", set.MatchLabels, c.Labels)
}

// ImpactOf is what is known of the impact of a logged event as of now, for
// an alert's suspects: its stored impact, or, for a start not scored yet,
// a provisional score over what has passed of its after window (cached
// for a step), or that of the start of a stop. Nil when there is none: the
// event is not scored, or the engine did not answer.
func (s *Service) ImpactOf(ctx context.Context, org string, e events.Logged, now time.Time) *events.Impact {
	if e.Impact != nil {
		return e.Impact
	}
	seq := e.Seq
	if e.State != string(events.StateStart) {
		if e.PairID == "" {
			return nil
		}
		row, err := s.opts.Store.EventByID(ctx, org, e.PairID)
		if err != nil {
			return nil
		}
		seq = row.Seq
	}
	if got, err := s.opts.Store.Impacts(ctx, org, []int64{seq}); err == nil {
		if r, ok := got[seq]; ok {
			return decodeImpact(r)
		}
	}
	return s.provisionalImpact(ctx, org, seq, now)
}

// decodeImpact is a stored impact; nil for a skipped event.
func decodeImpact(r state.ImpactRow) *events.Impact {
	if r.Body == "" {
		return nil
	}
	var imp events.Impact
	if json.Unmarshal([]byte(r.Body), &imp) != nil {
		return nil
	}
	return &imp
}
