package events

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

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
	// Owner says which organizations' active series and replays this
	// service writes; nil: every organization's (one process per log).
	Owner Owner
	// ReplayGrace is how old an uncommitted row must be to be replayed:
	// 0 with one process per log, more than the longest write in flight
	// when several share it.
	ReplayGrace time.Duration
	// Impacts, when set, gives listed events the impact they were scored
	// with (package impact); nil: none.
	Impacts ImpactReader
}

// ImpactReader reads the impact rows of events; *state.DB implements it.
// It is safe for concurrent use.
type ImpactReader interface {
	Impacts(ctx context.Context, org string, seqs []int64) (map[int64]state.ImpactRow, error)
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
	log     state.EventLog
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

	received   *prometheus.CounterVec
	duplicates prometheus.Counter
	unmatched  prometheus.Counter
	replanned  prometheus.Counter
	openGauge  prometheus.Gauge
	batchTime  prometheus.Histogram

	// marks are the seqs (sorted) of rows whose samples are committed, to
	// be marked so in the log's next transaction. Used by Run's goroutine.
	marks []int64
	// opens are the open starts the last tick read, by seq, with what of
	// them never changes (all but next), so that a tick reads only the
	// progress of the starts it has seen. Only the writer's goroutine
	// (Recover, then Run) uses it.
	opens map[int64]*openEvent
}

// marked reports whether seq's mark is waiting in marks.
func (s *Service) marked(seq int64) bool {
	_, found := slices.BinarySearch(s.marks, seq)
	return found
}

// flushMarks writes the waiting marks in a transaction of their own, and
// hides the rows hide (whose samples failed: see EventTx.Hide).
func (s *Service) flushMarks(ctx context.Context, hide []int64) error {
	if len(s.marks) == 0 && len(hide) == 0 {
		return nil
	}
	tx, err := s.log.BeginEvents(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.MarkCommitted(s.marks); err != nil {
		return err
	}
	if err := tx.Hide(hide); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.marks = nil
	return nil
}

// request is one call of Write on its way through the writer.
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

// NewService returns an event service over the event log and the series
// storage. Call Recover, then Run.
func NewService(logger *slog.Logger, reg prometheus.Registerer, log state.EventLog, backend storage.Backend, opts Options) *Service {
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
	s.replanned = f.NewCounter(prometheus.CounterOpts{
		Name: "tidemark_change_events_replanned_total",
		Help: "Groups of writes planned again because the event log refused a duplicate another writer had stored meanwhile, or ended the transaction for a conflict with another writer.",
	})
	s.openGauge = f.NewGauge(prometheus.GaugeOpts{
		Name: "tidemark_change_events_open",
		Help: "Starts without a stop whose active series this process writes.",
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
