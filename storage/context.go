package storage

import (
	"context"
	"errors"
	"sync"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

type orgKey struct{}

// WithOrg returns a context that routes storage calls to the organization slug.
func WithOrg(ctx context.Context, slug string) context.Context {
	return context.WithValue(ctx, orgKey{}, slug)
}

// OrgFrom returns the organization a context routes to.
func OrgFrom(ctx context.Context) (string, bool) {
	s, ok := ctx.Value(orgKey{}).(string)
	return s, ok && s != ""
}

// Routed adapts a Backend to the single Queryable and AppendableV2 that
// Prometheus's query API and remote-write handlers take: every call picks the
// organization from its context (see WithOrg). Queriers are lazy, since
// Querier(mint, maxt) has no context; the organization's querier is opened at
// the first Select or label call.
type Routed struct {
	Backend Backend
}

var (
	_ promstorage.SampleAndChunkQueryable = Routed{}
	_ promstorage.AppendableV2            = Routed{}
)

// AppenderV2 implements storage.AppendableV2.
func (r Routed) AppenderV2(ctx context.Context) promstorage.AppenderV2 {
	slug, ok := OrgFrom(ctx)
	if !ok {
		return errAppender{ErrNoOrg}
	}
	org, err := r.Backend.Org(slug)
	if err != nil {
		return errAppender{err}
	}
	return org.AppenderV2(ctx)
}

// Querier implements storage.Queryable.
func (r Routed) Querier(mint, maxt int64) (promstorage.Querier, error) {
	return &routedQuerier{lazy: lazy[promstorage.Querier]{backend: r.Backend, open: func(o Org) (promstorage.Querier, error) {
		return o.Querier(mint, maxt)
	}}}, nil
}

// ChunkQuerier implements storage.ChunkQueryable.
func (r Routed) ChunkQuerier(mint, maxt int64) (promstorage.ChunkQuerier, error) {
	return &routedChunkQuerier{lazy: lazy[promstorage.ChunkQuerier]{backend: r.Backend, open: func(o Org) (promstorage.ChunkQuerier, error) {
		return o.ChunkQuerier(mint, maxt)
	}}}, nil
}

// lazy opens one querier per organization on first use and closes them all.
type lazy[Q promstorage.LabelQuerier] struct {
	backend Backend
	open    func(Org) (Q, error)

	mtx sync.Mutex
	qs  map[string]Q
}

func (l *lazy[Q]) get(ctx context.Context) (Q, error) {
	var zero Q
	slug, ok := OrgFrom(ctx)
	if !ok {
		return zero, ErrNoOrg
	}
	l.mtx.Lock()
	defer l.mtx.Unlock()
	if q, ok := l.qs[slug]; ok {
		return q, nil
	}
	org, err := l.backend.Org(slug)
	if err != nil {
		return zero, err
	}
	q, err := l.open(org)
	if err != nil {
		return zero, err
	}
	if l.qs == nil {
		l.qs = map[string]Q{}
	}
	l.qs[slug] = q
	return q, nil
}

func (l *lazy[Q]) LabelValues(ctx context.Context, name string, hints *promstorage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	q, err := l.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	return q.LabelValues(ctx, name, hints, ms...)
}

func (l *lazy[Q]) LabelNames(ctx context.Context, hints *promstorage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	q, err := l.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	return q.LabelNames(ctx, hints, ms...)
}

func (l *lazy[Q]) Close() error {
	l.mtx.Lock()
	defer l.mtx.Unlock()
	var errs []error
	for _, q := range l.qs {
		errs = append(errs, q.Close())
	}
	l.qs = nil
	return errors.Join(errs...)
}

type routedQuerier struct {
	lazy[promstorage.Querier]
}

func (q *routedQuerier) Select(ctx context.Context, sortSeries bool, hints *promstorage.SelectHints, ms ...*labels.Matcher) promstorage.SeriesSet {
	inner, err := q.get(ctx)
	if err != nil {
		return promstorage.ErrSeriesSet(err)
	}
	return inner.Select(ctx, sortSeries, hints, ms...)
}

type routedChunkQuerier struct {
	lazy[promstorage.ChunkQuerier]
}

func (q *routedChunkQuerier) Select(ctx context.Context, sortSeries bool, hints *promstorage.SelectHints, ms ...*labels.Matcher) promstorage.ChunkSeriesSet {
	inner, err := q.get(ctx)
	if err != nil {
		return promstorage.ErrChunkSeriesSet(err)
	}
	return inner.Select(ctx, sortSeries, hints, ms...)
}

// errAppender fails every append with err.
type errAppender struct{ err error }

func (a errAppender) Append(promstorage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, promstorage.AOptions) (promstorage.SeriesRef, error) {
	return 0, a.err
}
func (a errAppender) AppendExemplars(promstorage.SeriesRef, labels.Labels, []exemplar.Exemplar) (promstorage.SeriesRef, error) {
	return 0, a.err
}
func (a errAppender) Commit() error   { return a.err }
func (a errAppender) Rollback() error { return nil }
