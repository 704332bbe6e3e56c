package metadata

import (
	"context"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"
	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/tidemark/tidemark/storage"
)

// Appendable wraps the appendable of Prometheus's remote-write and OTLP
// handlers: the metadata they pass with each series (AppendV2Options) is
// recorded for the organization in the appender's context once the append
// commits.
type Appendable struct {
	Next  promstorage.AppendableV2
	Store *Store
}

// AppenderV2 implements storage.AppendableV2. An appender of Next that
// takes exemplars (storage.ExemplarAppenderV2) stays one.
func (a Appendable) AppenderV2(ctx context.Context) promstorage.AppenderV2 {
	inner := a.Next.AppenderV2(ctx)
	org, ok := storage.OrgFrom(ctx)
	if !ok {
		return inner
	}
	app := &appender{AppenderV2: inner, store: a.Store, org: org}
	if ex, ok := inner.(promstorage.ExemplarAppenderV2); ok {
		return &exemplarAppender{appender: app, ex: ex}
	}
	return app
}

type appender struct {
	promstorage.AppenderV2
	store *Store
	org   string
	// seen is the metadata of this append's families, recorded at Commit.
	seen map[string]scrape.MetricMetadata
}

func (a *appender) Append(ref promstorage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts promstorage.AOptions) (promstorage.SeriesRef, error) {
	ref, err := a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
	if err == nil && !opts.Metadata.IsEmpty() {
		a.note(ls, opts)
	}
	return ref, err
}

func (a *appender) note(ls labels.Labels, opts promstorage.AOptions) {
	md := opts.Metadata
	typ := md.Type
	if typ == "" {
		typ = model.MetricTypeUnknown
	}
	fam := opts.MetricFamilyName
	if fam == "" {
		fam = Family(ls.Get(model.MetricNameLabel), typ)
	}
	if fam == "" {
		return
	}
	m := scrape.MetricMetadata{MetricFamily: fam, Type: typ, Help: md.Help, Unit: md.Unit}
	if old, ok := a.seen[fam]; ok && old == m {
		return
	}
	if a.seen == nil {
		a.seen = map[string]scrape.MetricMetadata{}
	}
	a.seen[fam] = m
}

func (a *appender) Commit() error {
	err := a.AppenderV2.Commit()
	if err == nil && len(a.seen) > 0 {
		ms := make([]scrape.MetricMetadata, 0, len(a.seen))
		for _, m := range a.seen {
			ms = append(ms, m)
		}
		a.store.Set(a.org, ms)
	}
	a.seen = nil
	return err
}

func (a *appender) Rollback() error {
	a.seen = nil
	return a.AppenderV2.Rollback()
}

type exemplarAppender struct {
	*appender
	ex promstorage.ExemplarAppenderV2
}

func (a *exemplarAppender) AppendExemplars(ref promstorage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (promstorage.SeriesRef, error) {
	return a.ex.AppendExemplars(ref, ls, es)
}
