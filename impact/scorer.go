package impact

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/storage"
)

// Change is an event to score: a start, or a point event (a start that
// never stops).
type Change struct {
	Seq  int64
	ID   string
	Name string
	// Time is the event's time in milliseconds.
	Time   int64
	Labels labels.Labels
	// Stop is the time of its stop in milliseconds; 0 while it has none.
	Stop int64
}

// AfterEnd is the end of the after window of c, in milliseconds: After
// past its time, or its stop when that comes sooner, but no sooner than
// MinAfter.
func (s *Settings) AfterEnd(c Change) int64 {
	end := c.Time + s.After.Milliseconds()
	if c.Stop != 0 && c.Stop < end {
		end = max(c.Stop, c.Time+s.MinAfter.Milliseconds())
	}
	return end
}

// Due is when c can be scored: its after window has ended and late samples
// had Delay to arrive.
func (s *Settings) Due(c Change) time.Time {
	return time.UnixMilli(s.AfterEnd(c)).Add(s.Delay)
}

// Scorer runs the signals' queries of an event and compares them. It is
// safe for concurrent use.
type Scorer struct {
	engine    promql.QueryEngine
	queryable promstorage.Queryable
}

// NewScorer returns a scorer whose range queries run on engine over
// queryable, with the organization in their context (storage.WithOrg): a
// remote engine ignores queryable, Prometheus's engine reads it.
func NewScorer(engine promql.QueryEngine, queryable promstorage.Queryable) *Scorer {
	return &Scorer{engine: engine, queryable: queryable}
}

// Score scores c in org as of now: each signal's query with c's match
// labels as matchers, over [Time-Before, Time] against (Time, AfterEnd].
// Before AfterEnd it scores what has passed of the after window and marks
// the impact provisional; while that is too short for MinPoints values a
// range apart, the values are Step apart. An error is the engine's, for a query that may
// work when tried again (storage unavailable, timeouts); a query the
// engine refuses leaves its signal without data, the reason saying why.
func (sc *Scorer) Score(ctx context.Context, org string, s *Settings, c Change, now time.Time) (*events.Impact, error) {
	ctx = storage.WithOrg(ctx, org)
	end := s.AfterEnd(c)
	provisional := now.UnixMilli() < end
	if provisional {
		end = now.UnixMilli()
	}
	vals := make([]Values, len(s.Signals))
	failed := make([]error, len(s.Signals))
	for i := range s.Signals {
		sig := &s.Signals[i]
		sp := sig.spacing
		if provisional && (end-c.Time)/sp.Milliseconds() < int64(s.MinPoints) {
			// Too early for points a range apart: closer ones rank an
			// alert's suspects, though they overstate significance.
			sp = s.Step
		}
		v, err := sc.values(ctx, s, sig, c, end, sp)
		if err != nil {
			if transient(err) {
				return nil, fmt.Errorf("signal %q: %w", sig.Name, err)
			}
			failed[i] = err
		}
		vals[i] = v
	}
	verdict, score, signals := Compare(s, vals)
	for i, err := range failed {
		if err != nil {
			signals[i].Reason = "the query failed: " + err.Error()
		}
	}
	return &events.Impact{
		Verdict:     verdict,
		ScoredAt:    formatTime(now.UnixMilli()),
		Score:       score,
		Provisional: provisional,
		Window: events.ImpactWindow{
			BeforeStart: formatTime(c.Time - s.Before.Milliseconds()),
			Start:       formatTime(c.Time),
			AfterEnd:    formatTime(end),
		},
		Signals: signals,
	}, nil
}

// values runs one signal's query over both windows, at the points
// Time - k*spacing (before, k >= 0) and Time + k*spacing (after, k >= 1)
// up to end: one range query, split at the event's time. (The first point
// after is one range past the event when spacing is the signal's: its
// rate windows hold no sample from before.)
func (sc *Scorer) values(ctx context.Context, s *Settings, sig *Signal, c Change, end int64, spacing time.Duration) (Values, error) {
	q, err := sig.render(c.Labels, s.MatchLabels)
	if err != nil {
		return Values{}, err
	}
	sp := spacing.Milliseconds()
	n := max(s.Before.Milliseconds()/sp, 1)
	start := c.Time - (n-1)*sp
	if end < c.Time+sp {
		end = c.Time // Nothing after yet: the before window only.
	}
	qry, err := sc.engine.NewRangeQuery(ctx, sc.queryable, nil, q, time.UnixMilli(start), time.UnixMilli(end), spacing)
	if err != nil {
		return Values{}, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return Values{}, res.Err
	}
	var v Values
	switch val := res.Value.(type) {
	case promql.Matrix:
		for _, series := range val {
			for _, p := range series.Floats {
				if p.T <= c.Time {
					v.Before = append(v.Before, p.F)
				} else {
					v.After = append(v.After, p.F)
				}
			}
		}
	default:
		return Values{}, fmt.Errorf("the query returned a %s, not a range of values", res.Value.Type())
	}
	return v, nil
}

// transient reports whether a query error may go away: storage that did
// not answer, a timeout, a cancellation.
func transient(err error) bool {
	var es promql.ErrStorage
	var eqt promql.ErrQueryTimeout
	var eqc promql.ErrQueryCanceled
	return errors.As(err, &es) || errors.As(err, &eqt) || errors.As(err, &eqc) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func formatTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
