package storage

import (
	"context"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

// An Org whose storage keeps exemplars (the embedded TSDB, with
// EmbeddedOptions.MaxExemplars above 0) also implements
// promstorage.ExemplarQueryable. One that does not answers exemplar queries
// with none, as Prometheus does with its exemplar storage off.

var _ promstorage.ExemplarQueryable = Routed{}

// ExemplarQuerier implements storage.ExemplarQueryable for the
// organization in ctx.
func (r Routed) ExemplarQuerier(ctx context.Context) (promstorage.ExemplarQuerier, error) {
	slug, ok := OrgFrom(ctx)
	if !ok {
		return nil, ErrNoOrg
	}
	org, err := r.Backend.Org(slug)
	if err != nil {
		return nil, err
	}
	return exemplarQuerier(ctx, org)
}

func exemplarQuerier(ctx context.Context, o Org) (promstorage.ExemplarQuerier, error) {
	if eq, ok := As[promstorage.ExemplarQueryable](o); ok {
		return eq.ExemplarQuerier(ctx)
	}
	return noExemplars{}, nil
}

type noExemplars struct{}

func (noExemplars) Select(int64, int64, ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	return []exemplar.QueryResult{}, nil
}
