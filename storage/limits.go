package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

// ErrSeriesLimit is returned when a sample would create a series past the
// organization's active-series limit.
var ErrSeriesLimit = errors.New("active series limit reached")

// LimitOptions are the per-organization storage limits.
type LimitOptions struct {
	// MaxSeriesPerOrg bounds the active series of an organization; 0: none.
	MaxSeriesPerOrg uint64
	// Rejected counts the series the limit refused; nil: not counted.
	Rejected prometheus.Counter
}

// Limited is a Backend that enforces LimitOptions and reports write
// failures to the request (see WithWriteReport).
type Limited struct {
	Backend
	opts     LimitOptions
	rejected prometheus.Counter
	// reserved are, by organization, the series its open appenders may
	// create without looking them up (see limitedAppender.reserve).
	reserved sync.Map // slug → *atomic.Int64
}

// NewLimited wraps b.
func NewLimited(b Backend, opts LimitOptions) *Limited {
	l := &Limited{Backend: b, opts: opts, rejected: opts.Rejected}
	if l.rejected == nil {
		l.rejected = prometheus.NewCounter(prometheus.CounterOpts{Name: "unused"})
	}
	return l
}

// Org implements Backend.
func (l *Limited) Org(slug string) (Org, error) {
	o, err := l.Backend.Org(slug)
	if err != nil {
		return nil, err
	}
	r, _ := l.reserved.LoadOrStore(slug, new(atomic.Int64))
	return limitedOrg{Org: o, l: l, slug: slug, reserved: r.(*atomic.Int64)}, nil
}

type limitedOrg struct {
	Org
	l        *Limited
	slug     string
	reserved *atomic.Int64
}

// Unwrap implements Wrapper.
func (o limitedOrg) Unwrap() Org { return o.Org }

func (o limitedOrg) AppenderV2(ctx context.Context) promstorage.AppenderV2 {
	inner := o.Org.AppenderV2(ctx)
	a := &limitedAppender{AppenderV2: inner, o: o, report: reportFrom(ctx)}
	if _, counted := o.Org.ActiveSeries(); counted && o.l.opts.MaxSeriesPerOrg > 0 {
		gr, ok := inner.(promstorage.GetRef)
		if !ok {
			// The Org contract says a counting storage's appenders look up
			// series; a wrapper that drops it must not switch the limit off.
			inner.Rollback()
			return errAppender{fmt.Errorf("storage of organization %q counts its series but its appender (%T) cannot look them up (storage.GetRef): the series limit cannot be enforced", o.slug, inner)}
		}
		a.getRef = gr
	}
	if ex, ok := inner.(promstorage.ExemplarAppenderV2); ok {
		return &limitedExemplarAppender{limitedAppender: a, ex: ex}
	}
	return a
}

type limitedAppender struct {
	promstorage.AppenderV2
	o limitedOrg
	// getRef is set when the series limit applies.
	getRef promstorage.GetRef
	report *WriteReport
	// free is how many more samples may be appended without looking their
	// series up: the room this appender reserved of the organization's and
	// has not used, given back when it ends.
	free int64
}

// reserveChunk is how much room an appender reserves at a time.
const reserveChunk = 1024

// take reserves room for k series if the organization has it. Its series
// plus the room its appenders hold never pass the limit: room is given back
// only after the series it was taken for is created (and counted).
func (o limitedOrg) take(k, max int64) bool {
	for {
		r := o.reserved.Load()
		// Read after the room: a creator counts in n before it gives
		// its room back.
		n, _ := o.Org.ActiveSeries()
		if int64(n)+r+k > max {
			return false
		}
		if o.reserved.CompareAndSwap(r, r+k) {
			return true
		}
	}
}

// release gives the appender's unused room back.
func (a *limitedAppender) release() {
	if a.free > 0 {
		a.o.reserved.Add(-a.free)
		a.free = 0
	}
}

// Append lets a sample create a series only with room for it (see take):
// room for reserveChunk series at a time while the organization has it,
// so that the next samples need no look-up of their own (each creates at
// most one series; the storage's look-up in Append is the only one); near
// the limit, the series is looked up and room taken for a new one alone.
func (a *limitedAppender) Append(ref promstorage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts promstorage.AOptions) (promstorage.SeriesRef, error) {
	max := int64(a.o.l.opts.MaxSeriesPerOrg)
	if ref != 0 || a.getRef == nil {
		return a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
	}
	if a.free == 0 && a.o.take(reserveChunk, max) {
		a.free = reserveChunk
	}
	if a.free == 0 {
		if r, _ := a.getRef.GetRef(ls, ls.Hash()); r != 0 {
			return a.AppenderV2.Append(r, ls, st, t, v, h, fh, opts)
		}
		if !a.o.take(1, max) {
			a.o.l.rejected.Inc()
			err := fmt.Errorf("%w: organization %q has %d active series, the limit (--limits.max-series-per-org); series %s was not created", ErrSeriesLimit, a.o.slug, max, ls.String())
			a.report.record(err, nil)
			return 0, err
		}
		a.free = 1
	}
	ref, err := a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
	a.free--
	a.o.reserved.Add(-1)
	return ref, err
}

// Prepare implements Preparer for appenders whose storage has it (a remote
// engine): the limit is a wrapper and must keep that capability.
func (a *limitedAppender) Prepare() (bool, error) {
	p, ok := a.AppenderV2.(Preparer)
	if !ok {
		return false, nil
	}
	stored, err := p.Prepare()
	if err != nil {
		a.report.record(nil, err)
	}
	return stored, err
}

func (a *limitedAppender) Commit() error {
	defer a.release()
	err := a.AppenderV2.Commit()
	if err != nil {
		a.report.record(nil, err)
	}
	return err
}

func (a *limitedAppender) Rollback() error {
	defer a.release()
	return a.AppenderV2.Rollback()
}

type limitedExemplarAppender struct {
	*limitedAppender
	ex promstorage.ExemplarAppenderV2
}

func (a *limitedExemplarAppender) AppendExemplars(ref promstorage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (promstorage.SeriesRef, error) {
	return a.ex.AppendExemplars(ref, ls, es)
}

// WriteReport collects why a write through Prometheus's handlers failed,
// so the HTTP layer can answer with the right status: handlers answer 500
// to errors they do not know.
type WriteReport struct {
	mtx sync.Mutex
	// Limit is set when a limit refused a sample.
	Limit error
	// Commit is set when the storage failed to commit (disk full, read-only).
	Commit error
}

// record keeps the first limit and the first commit error.
func (r *WriteReport) record(limit, commit error) {
	if r == nil {
		return
	}
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if r.Limit == nil {
		r.Limit = limit
	}
	if r.Commit == nil {
		r.Commit = commit
	}
}

// Errors returns the recorded limit and commit errors.
func (r *WriteReport) Errors() (limit, commit error) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	return r.Limit, r.Commit
}

type reportKey struct{}

// WithWriteReport returns a context whose writes record their failures in
// the returned report.
func WithWriteReport(ctx context.Context) (context.Context, *WriteReport) {
	r := &WriteReport{}
	return context.WithValue(ctx, reportKey{}, r), r
}

func reportFrom(ctx context.Context) *WriteReport {
	r, _ := ctx.Value(reportKey{}).(*WriteReport)
	return r
}
