package query

import (
	"context"
	"math"
	"sync"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/tidemark/tidemark/storage"
)

// Appended is what one commit appended: per metric name (the __name__
// label, "" for series without one), the lowest sample timestamp.
type Appended map[string]int64

// lowest is the lowest timestamp appended to any of names; all (the lowest
// of every name) when names is nil, which means any metric.
func (a Appended) lowest(names []string, all int64) int64 {
	if names == nil {
		return all
	}
	low := int64(math.MaxInt64)
	for _, n := range names {
		if t, ok := a[n]; ok {
			low = min(low, t)
		}
	}
	return low
}

// AppendNotifier tells subscribers what every commit appended. A
// ResultsCache is correct only if it hears of every append to the storage
// it caches: subscribe its Invalidate.
type AppendNotifier interface {
	// Subscribe registers f. f is called with the organization and what a
	// commit appended, after the samples became queryable and before the
	// commit returns, from the committing goroutine; it must not block.
	Subscribe(f func(org string, a Appended))
}

// Watched is a storage.Backend whose appenders tell subscribers what they
// appended (see AppendNotifier). Everything else is the wrapped backend's.
type Watched struct {
	storage.Backend

	mtx  sync.RWMutex
	subs []func(string, Appended)
}

var (
	_ storage.Backend = (*Watched)(nil)
	_ AppendNotifier  = (*Watched)(nil)
)

// WatchAppends wraps b. Every writer of the storage (remote write, OTLP,
// change events, rules) must append through the returned backend for a
// results cache over it to stay correct.
func WatchAppends(b storage.Backend) *Watched {
	return &Watched{Backend: b}
}

// Subscribe implements AppendNotifier.
func (w *Watched) Subscribe(f func(org string, a Appended)) {
	w.mtx.Lock()
	defer w.mtx.Unlock()
	w.subs = append(w.subs, f)
}

func (w *Watched) notify(org string, a Appended) {
	w.mtx.RLock()
	defer w.mtx.RUnlock()
	for _, f := range w.subs {
		f(org, a)
	}
}

// Org implements storage.Backend.
func (w *Watched) Org(slug string) (storage.Org, error) {
	o, err := w.Backend.Org(slug)
	if err != nil {
		return nil, err
	}
	return watchedOrg{Org: o, notify: func(a Appended) { w.notify(slug, a) }}, nil
}

type watchedOrg struct {
	storage.Org
	notify func(Appended)
}

// Unwrap implements storage.Wrapper.
func (o watchedOrg) Unwrap() storage.Org { return o.Org }

func (o watchedOrg) AppenderV2(ctx context.Context) promstorage.AppenderV2 {
	return NotifyingAppender(o.Org.AppenderV2(ctx), o.notify)
}

// NotifyingAppender wraps app so that its Commit calls notify with what it
// appended, after app's Commit. Samples are counted whether or not their
// Append succeeded: telling of too much only costs cache entries.
func NotifyingAppender(app promstorage.AppenderV2, notify func(Appended)) promstorage.AppenderV2 {
	a := &notifyingAppender{AppenderV2: app, notify: notify}
	if ex, ok := app.(promstorage.ExemplarAppenderV2); ok {
		return &notifyingExemplarAppender{notifyingAppender: a, ex: ex}
	}
	return a
}

type notifyingAppender struct {
	promstorage.AppenderV2
	notify func(Appended)
	low    Appended
}

func (a *notifyingAppender) Append(ref promstorage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts promstorage.AOptions) (promstorage.SeriesRef, error) {
	low := t
	if st != 0 && st < t {
		// A start timestamp may be stored as a zero sample at st.
		low = st
	}
	if a.low == nil {
		a.low = Appended{}
	}
	name := ls.Get(labels.MetricName)
	if cur, ok := a.low[name]; !ok || low < cur {
		a.low[name] = low
	}
	return a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
}

// Prepare keeps the wrapped appender's storage.Preparer (a remote engine's
// appender sends at Prepare): samples it stored are told of at once.
func (a *notifyingAppender) Prepare() (bool, error) {
	p, ok := a.AppenderV2.(storage.Preparer)
	if !ok {
		return false, nil
	}
	stored, err := p.Prepare()
	if stored && len(a.low) > 0 {
		a.notify(a.low)
	}
	return stored, err
}

func (a *notifyingAppender) Commit() error {
	err := a.AppenderV2.Commit()
	if len(a.low) > 0 {
		a.notify(a.low)
	}
	a.low = nil
	return err
}

func (a *notifyingAppender) Rollback() error {
	a.low = nil
	return a.AppenderV2.Rollback()
}

type notifyingExemplarAppender struct {
	*notifyingAppender
	ex promstorage.ExemplarAppenderV2
}

func (a *notifyingExemplarAppender) AppendExemplars(ref promstorage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (promstorage.SeriesRef, error) {
	return a.ex.AppendExemplars(ref, ls, es)
}
