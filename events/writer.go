package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// Options configures the event service.
type Options struct {
	// MetricName names the point series (default change_events).
	MetricName string
	// CompatMetricNames are further names the point series is written under.
	CompatMetricNames []string
	// ActiveResolution is the step of the change_event_active samples.
	ActiveResolution time.Duration
	// MaxDuration ends an active series whose stop never came.
	MaxDuration time.Duration
	Limits      Limits
}

// Errors of Write beside *InputError.
var (
	// ErrUnavailable: storage could not take the write; the client should retry.
	ErrUnavailable = errors.New("change event storage is unavailable; retry later")
	// ErrStopping: the server is shutting down.
	ErrStopping = errors.New("the server is shutting down; retry later")
)

// ConflictError is returned when an event's sample conflicts with a stored
// one (the same series and time with another value).
type ConflictError struct{ msg string }

func (e *ConflictError) Error() string { return e.msg }

// Result is what Write answers for one event.
type Result struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	// Duplicate is true when the event was stored before (same id, or same
	// name, state, time and labels); ID and Timestamp are then the first one's.
	Duplicate bool `json:"duplicate,omitempty"`
	// Seq is the event's position in the log: a number that identifies it
	// (Grafana's annotation ids are numbers).
	Seq int64 `json:"-"`
}

// Service writes change events. One writer goroutine (Run) orders every
// write, pairs starts with stops and keeps the active series; Write may be
// called from any goroutine.
type Service struct {
	logger  *slog.Logger
	log     *state.DB
	backend storage.Backend
	opts    Options
	now     func() time.Time

	pointNames []string
	res        int64

	reqs     chan *request
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	started  atomic.Bool

	// Owned by the writer goroutine (and by Recover before Run).
	open       *openSet
	nextSeq    int64
	needReplay bool

	received   *prometheus.CounterVec
	duplicates prometheus.Counter
	unmatched  prometheus.Counter
	openGauge  prometheus.Gauge
	batchTime  prometheus.Histogram
}

type request struct {
	ctx    context.Context
	org    string
	events []Event
	reply  chan reply
}

type reply struct {
	results []Result
	err     error
}

// NewService returns an event service. Call Recover, then Run.
func NewService(logger *slog.Logger, reg prometheus.Registerer, log *state.DB, backend storage.Backend, opts Options) *Service {
	if opts.MetricName == "" {
		opts.MetricName = DefaultMetricName
	}
	if opts.ActiveResolution <= 0 {
		opts.ActiveResolution = 15 * time.Second
	}
	if opts.MaxDuration <= 0 {
		opts.MaxDuration = 24 * time.Hour
	}
	if opts.Limits.MaxBatch == 0 {
		opts.Limits = DefaultLimits
	}
	s := &Service{
		logger:     logger,
		log:        log,
		backend:    backend,
		opts:       opts,
		now:        time.Now,
		pointNames: append([]string{opts.MetricName}, opts.CompatMetricNames...),
		res:        opts.ActiveResolution.Milliseconds(),
		reqs:       make(chan *request),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		open:       newOpenSet(),
	}
	f := promauto.With(reg)
	s.received = f.NewCounterVec(prometheus.CounterOpts{
		Name: "tidemark_change_events_received_total",
		Help: "Change events accepted, by state (duplicates included).",
	}, []string{"state"})
	s.duplicates = f.NewCounter(prometheus.CounterOpts{
		Name: "tidemark_change_events_duplicates_total",
		Help: "Change events answered with an earlier event's id.",
	})
	s.unmatched = f.NewCounter(prometheus.CounterOpts{
		Name: "tidemark_change_events_unmatched_stops_total",
		Help: "Stops that found no open start with the same name and labels.",
	})
	s.openGauge = f.NewGauge(prometheus.GaugeOpts{
		Name: "tidemark_change_events_open",
		Help: "Starts without a stop whose active series is being written.",
	})
	s.batchTime = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "tidemark_change_events_write_duration_seconds",
		Help:    "Time to make a group of event writes durable (event log and TSDB).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	return s
}

// Limits returns the decoding limits the service was configured with.
func (s *Service) Limits() Limits { return s.opts.Limits }

// MaxDuration is how long an event stays open without a stop.
func (s *Service) MaxDuration() time.Duration { return s.opts.MaxDuration }

// Write stores events of an organization durably: when it returns nil, every
// event is in the event log and its samples are in the TSDB's WAL. Either
// all events of the call are stored or, on error, none of them.
func (s *Service) Write(ctx context.Context, org string, evs []Event) ([]Result, error) {
	req := &request{ctx: context.WithoutCancel(ctx), org: org, events: evs, reply: make(chan reply, 1)}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.quit:
		return nil, ErrStopping
	}
	// Once queued the write goes ahead; wait for its outcome.
	rep := <-req.reply
	return rep.results, rep.err
}

// Run is the writer loop. It returns after Stop, once queued writes are done.
func (s *Service) Run() {
	s.started.Store(true)
	defer close(s.done)
	tick := time.NewTicker(s.opts.ActiveResolution)
	defer tick.Stop()
	for {
		select {
		case r := <-s.reqs:
			s.process(s.collect(r))
		case <-tick.C:
			s.tick()
		case <-s.quit:
			for {
				select {
				case r := <-s.reqs:
					s.process(s.collect(r))
				default:
					s.tick()
					return
				}
			}
		}
	}
}

// Stop ends Run and waits for it, if it was started. Writes queued
// before Stop are done; later ones fail with ErrStopping.
func (s *Service) Stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	if s.started.Load() {
		<-s.done
	}
}

// maxGroup bounds how many waiting requests share one transaction.
const maxGroup = 64

// collect gathers the requests already waiting, so that they share one
// event-log transaction and one fsync (group commit).
func (s *Service) collect(first *request) []*request {
	group := []*request{first}
	n := len(first.events)
	for len(group) < maxGroup && n < s.opts.Limits.MaxBatch {
		select {
		case r := <-s.reqs:
			group = append(group, r)
			n += len(r.events)
		default:
			return group
		}
	}
	return group
}

// pending is one request of a group on its way to being stored.
type pending struct {
	req     *request
	results []Result
	rows    []*state.EventRow
	pairs   [][3]int64 // start seq, stop seq, duration
	samples []sample
	replays []int64 // seqs of uncommitted rows re-appended as duplicates
	app     promstorage.AppenderV2
	err     error
}

func formatTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func newID(now time.Time) string {
	b := make([]byte, 8)
	rand.Read(b)
	return fmt.Sprintf("%012x%s", now.UnixMilli(), hex.EncodeToString(b))
}

// dedupKey identifies an event for idempotency: its id, or its name, state,
// time and labels.
func dedupKey(ev *Event) string {
	if ev.ID != "" {
		return "id:" + ev.ID
	}
	return fmt.Sprintf("ev:%s\x00%s\x00%d\x00%s", ev.Name, ev.State, ev.Time, ev.Labels.String())
}

func (s *Service) process(group []*request) {
	start := s.now()
	defer func() { s.batchTime.Observe(time.Since(start).Seconds()) }()
	ctx := context.Background()
	fail := func(err error) {
		for _, r := range group {
			r.reply <- reply{err: err}
		}
	}

	tx, err := s.log.BeginEvents(ctx)
	if err != nil {
		s.logger.Error("begin event log transaction", "err", err)
		fail(ErrUnavailable)
		return
	}
	ov := newOverlay(s.open)
	seen := map[string]Result{}
	replayed := map[int64]bool{}
	seq := s.nextSeq
	var ps []*pending
	abort := func(err error) {
		tx.Rollback()
		for _, p := range ps {
			if p.app != nil {
				p.app.Rollback()
			}
		}
		s.logger.Error("write change events", "err", err)
		fail(ErrUnavailable)
	}

	for _, req := range group {
		p := &pending{req: req, results: make([]Result, len(req.events))}
		ps = append(ps, p)
		var undo []undoEntry
		local := map[string]Result{}
		keys := make([]string, len(req.events))
		for i := range req.events {
			keys[i] = dedupKey(&req.events[i])
		}
		stored, err := tx.FindDedups(req.org, keys)
		if err != nil {
			abort(err)
			return
		}
		for i := range req.events {
			ev := &req.events[i]
			key := keys[i]
			gk := req.org + "\xff" + key
			if r, ok := local[gk]; ok {
				p.results[i] = dup(r)
				continue
			}
			if r, ok := seen[gk]; ok {
				p.results[i] = dup(r)
				continue
			}
			if row, found := stored[key]; found {
				p.results[i] = Result{ID: row.ID, Timestamp: formatTime(row.TS), Duplicate: true, Seq: row.Seq}
				if !row.Committed && !replayed[row.Seq] {
					// Its first write never reached the TSDB: do it now.
					replayed[row.Seq] = true
					p.replays = append(p.replays, row.Seq)
					p.samples = append(p.samples, s.rowSamples(row)...)
				}
				continue
			}
			seq++
			nrow, err := s.newRow(req.org, seq, ev, key, start)
			if err != nil {
				abort(err)
				return
			}
			s.pair(ov, &undo, p, nrow, ev)
			p.samples = append(p.samples, s.pointSamples(ev)...)
			p.rows = append(p.rows, nrow)
			p.results[i] = Result{ID: nrow.ID, Timestamp: formatTime(nrow.TS), Seq: nrow.Seq}
			local[gk] = p.results[i]
		}

		org, err := s.backend.Org(req.org)
		if err != nil {
			ov.undo(undo)
			p.err = ErrUnavailable
			s.logger.Error("open organization storage", "org", req.org, "err", err)
			continue
		}
		p.app = org.AppenderV2(ctx)
		if err := appendAll(p.app, p.samples); err != nil {
			p.app.Rollback()
			p.app = nil
			ov.undo(undo)
			p.err = s.appendError(err)
			continue
		}
		if err := tx.InsertMany(p.rows); err != nil {
			abort(err)
			return
		}
		for _, pr := range p.pairs {
			if err := tx.ClosePair(pr[0], pr[1], pr[2]); err != nil {
				abort(err)
				return
			}
		}
		for k, r := range local {
			seen[k] = r
		}
	}

	// The active samples of the starts of this group, up to now.
	active, expired := s.advanceOpen(ov, start.UnixMilli(), true)
	for _, seq := range expired {
		if err := tx.ExpireOpen(seq); err != nil {
			abort(err)
			return
		}
	}

	if err := tx.Commit(); err != nil {
		abort(err)
		return
	}
	// The event log holds the group: from here on it is the truth, and a
	// crash before the TSDB commit is repaired by replaying uncommitted rows.
	ov.apply()
	s.nextSeq = seq
	s.openGauge.Set(float64(s.open.len()))

	var committed []int64
	for _, p := range ps {
		if p.err != nil {
			continue
		}
		if err := p.app.Commit(); err != nil {
			s.logger.Error("commit change event samples", "org", p.req.org, "err", err)
			p.err = ErrUnavailable
			s.needReplay = true
			// Write the active series of its starts again from the start.
			for _, row := range p.rows {
				if o := s.open.byKey[openKey(row.Org, row.PairKey)]; o != nil && o.seq == row.Seq {
					o.next = o.start
				}
			}
			continue
		}
		for _, row := range p.rows {
			committed = append(committed, row.Seq)
			s.received.WithLabelValues(row.State).Inc()
		}
		committed = append(committed, p.replays...)
		for _, r := range p.results {
			if r.Duplicate {
				s.duplicates.Inc()
			}
		}
	}
	s.commitSamples(ctx, active)
	if err := s.log.MarkCommitted(ctx, sortedSeqs(committed)); err != nil {
		// The rows are replayed (idempotently) at the next start.
		s.logger.Warn("mark change events committed", "err", err)
	}
	for _, p := range ps {
		if p.err != nil {
			p.req.reply <- reply{err: p.err}
		} else {
			p.req.reply <- reply{results: p.results}
		}
	}
}

func dup(r Result) Result {
	r.Duplicate = true
	return r
}

func sortedSeqs(s []int64) []int64 {
	// Seqs are appended in increasing order but for replays; a simple
	// insertion sort keeps runs contiguous for MarkCommitted.
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j-1] > s[j]; j-- {
			s[j-1], s[j] = s[j], s[j-1]
		}
	}
	return s
}

func appendAll(app promstorage.AppenderV2, samples []sample) error {
	for _, sm := range samples {
		if _, err := app.Append(0, sm.ls, 0, sm.t, sm.v, nil, nil, promstorage.AOptions{}); err != nil {
			return fmt.Errorf("series %s at %s: %w", sm.ls.String(), formatTime(sm.t), err)
		}
	}
	return nil
}

func (s *Service) appendError(err error) error {
	if errors.Is(err, promstorage.ErrDuplicateSampleForTimestamp) {
		return &ConflictError{msg: "an event conflicts with a stored one: " + err.Error() + "; send a different timestamp, or the same value"}
	}
	if errors.Is(err, storage.ErrSeriesLimit) {
		return &InputError{Index: -1, Problem: err.Error()}
	}
	if errors.Is(err, promstorage.ErrOutOfBounds) || errors.Is(err, promstorage.ErrTooOldSample) || errors.Is(err, promstorage.ErrOutOfOrderSample) {
		return &InputError{Index: -1, Field: "timestamp", Problem: "is too old for storage: " + err.Error(), Accepted: "times within the backfill window"}
	}
	s.logger.Error("append change event samples", "err", err)
	return ErrUnavailable
}

func (s *Service) newRow(org string, seq int64, ev *Event, key string, received time.Time) (*state.EventRow, error) {
	id := ev.ID
	if id == "" {
		id = newID(received)
	}
	lbls, err := json.Marshal(ev.Labels)
	if err != nil {
		return nil, err
	}
	links := []byte("[]")
	if len(ev.Links) > 0 {
		if links, err = json.Marshal(ev.Links); err != nil {
			return nil, err
		}
	}
	return &state.EventRow{
		Seq:        seq,
		Org:        org,
		ID:         id,
		DedupKey:   key,
		Name:       ev.Name,
		State:      string(ev.State),
		TS:         ev.Time,
		Value:      ev.Value,
		Labels:     string(lbls),
		PairKey:    pairLabels(ev.Name, ev.Labels).String(),
		Body:       string(ev.Raw),
		Metadata:   string(ev.Metadata),
		Links:      string(links),
		ReceivedAt: received.UnixMilli(),
	}, nil
}

// pair matches a start or stop with the open set and adds the samples and
// log changes that follow from it.
func (s *Service) pair(ov *overlay, undo *[]undoEntry, p *pending, row *state.EventRow, ev *Event) {
	k := openKey(row.Org, row.PairKey)
	o := ov.get(k)
	switch ev.State {
	case StateStart:
		if o != nil {
			s.logger.Info("start of an event that is already open; keeping the first start", "org", row.Org, "event", row.PairKey, "open_since", formatTime(o.start))
			return
		}
		pl := pairLabels(ev.Name, ev.Labels)
		ov.set(k, &openEvent{org: row.Org, seq: row.Seq, id: row.ID, start: ev.Time, active: withName(ActiveMetricName, pl), next: ev.Time, received: row.ReceivedAt}, undo)
		row.Open = true
	case StateStop:
		if o == nil {
			k, o = ov.findCovered(row.Org, pairLabels(ev.Name, ev.Labels))
		}
		if o == nil || ev.Time < o.start {
			s.unmatched.Inc()
			s.logger.Info("stop without an open start", "org", row.Org, "event", row.PairKey, "time", formatTime(ev.Time))
			return
		}
		oc := *o
		last := oc.lastWritten(s.res)
		staleAt := ev.Time
		switch {
		case last < ev.Time:
			// The usual case: the region ends exactly at the stop.
			p.samples = append(p.samples, oc.advance(ev.Time, s.res)...)
		case last == oc.start:
			// A stop at its start's very time: a region of one millisecond.
			staleAt = ev.Time + 1
		default:
			// The stop arrived later than the active-series lag and is dated
			// before samples already written. Samples are never deleted (the
			// TSDB's tombstones are avoided), so the region ends just after
			// the last written sample instead.
			staleAt = last + 1
			s.logger.Info("stop arrived after active samples past its time; its region ends at the last written sample",
				"org", row.Org, "event", row.PairKey, "stop", formatTime(ev.Time), "region_end", formatTime(last))
		}
		p.samples = append(p.samples, sample{ls: oc.active, t: staleAt, v: staleNaN})
		dur := ev.Time - oc.start
		p.samples = append(p.samples, sample{ls: withName(DurationMetricName, pairLabels(ev.Name, ev.Labels)), t: ev.Time, v: float64(dur) / 1000})
		row.PairSeq.Int64, row.PairSeq.Valid = oc.seq, true
		row.DurationMS.Int64, row.DurationMS.Valid = dur, true
		p.pairs = append(p.pairs, [3]int64{oc.seq, row.Seq, dur})
		ov.set(k, nil, undo)
	}
}

// ActiveLag is how far behind now the active samples of an open event are
// written, and how long after a start arrives its backfill waits. Only the
// first sample of a start is written at once. So a stop that arrives within
// the lag of its time, or (backfilling) within the lag of its start's
// arrival, ends the region exactly at its time; the lag is well under
// PromQL's 5m lookback, so an open event reads as active at now.
const ActiveLag = 30 * time.Second

// activeUpTo returns o's active samples up to now less the lag, ending the
// series at the maximum duration. expired is true once it has ended.
func (s *Service) activeUpTo(o *openEvent, now int64) (out []sample, expired bool) {
	end := o.start + s.opts.MaxDuration.Milliseconds()
	lag := ActiveLag.Milliseconds()
	if now >= end && now >= o.received+lag {
		out = o.advance(end, s.res)
		return append(out, sample{ls: o.active, t: end, v: staleNaN}), true
	}
	limit := now - lag + 1
	if now < o.received+lag {
		limit = o.start + 1 // Only the first sample, until the backfill waits out the lag.
	}
	if o.next == o.start && o.start <= now {
		limit = max(limit, o.start+1)
	}
	return o.advance(min(limit, end), s.res), false
}

// advanceOpen writes the active samples of open events up to now: of all of
// them, or (group) only of those the overlay changed. Expired events leave
// the set; their seqs are returned.
func (s *Service) advanceOpen(ov *overlay, now int64, onlyDirty bool) (map[string][]sample, []int64) {
	out := map[string][]sample{}
	var expired []int64
	visit := func(k string, o *openEvent) {
		smp, exp := s.activeUpTo(o, now)
		out[o.org] = append(out[o.org], smp...)
		if exp {
			expired = append(expired, o.seq)
			s.logger.Info("open event reached the maximum duration; its active series ends", "org", o.org, "id", o.id, "max_duration", s.opts.MaxDuration)
			var undo []undoEntry
			ov.set(k, nil, &undo)
		}
	}
	if onlyDirty {
		for k := range ov.dirty {
			if o := ov.changes[k]; o != nil {
				visit(k, o)
			}
		}
	} else {
		for k, o := range ov.base.byKey {
			visit(k, o)
		}
	}
	return out, expired
}

// commitSamples appends and commits samples per organization, dropping
// samples the TSDB already has.
func (s *Service) commitSamples(ctx context.Context, byOrg map[string][]sample) {
	for slug, smp := range byOrg {
		if len(smp) == 0 {
			continue
		}
		org, err := s.backend.Org(slug)
		if err != nil {
			s.logger.Error("open organization storage", "org", slug, "err", err)
			continue
		}
		app := org.AppenderV2(ctx)
		for _, sm := range smp {
			if _, err := app.Append(0, sm.ls, 0, sm.t, sm.v, nil, nil, promstorage.AOptions{}); err != nil {
				s.logger.Debug("append active sample", "org", slug, "series", sm.ls.String(), "err", err)
			}
		}
		if err := app.Commit(); err != nil {
			s.logger.Error("commit active samples", "org", slug, "err", err)
		}
	}
}

// tick writes the active samples of every open event up to now.
func (s *Service) tick() {
	ctx := context.Background()
	if s.needReplay {
		if err := s.replayUncommitted(ctx); err != nil {
			s.logger.Error("replay uncommitted change events", "err", err)
		} else {
			s.needReplay = false
		}
	}
	if s.open.len() == 0 {
		return
	}
	ov := newOverlay(s.open)
	active, expired := s.advanceOpen(ov, s.now().UnixMilli(), false)
	s.commitSamples(ctx, active)
	ov.apply()
	for _, seq := range expired {
		if err := s.log.ExpireOpen(ctx, seq); err != nil {
			s.logger.Error("expire open change event", "seq", seq, "err", err)
		}
	}
	s.openGauge.Set(float64(s.open.len()))
}
