package storage

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

// preparing is an Org whose appenders send at Prepare, as a remote
// engine's do, and counts nothing.
type preparing struct {
	promstorage.SampleAndChunkQueryable
	prepared *int
	fail     error
}

func (p preparing) ActiveSeries() (uint64, bool) { return 0, false }
func (p preparing) AppenderV2(context.Context) promstorage.AppenderV2 {
	return &preparingAppender{p: p}
}

type preparingAppender struct{ p preparing }

func (a *preparingAppender) Append(promstorage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, promstorage.AOptions) (promstorage.SeriesRef, error) {
	return 1, nil
}
func (a *preparingAppender) Prepare() (bool, error) {
	*a.p.prepared++
	return a.p.fail == nil, a.p.fail
}
func (a *preparingAppender) Commit() error   { return nil }
func (a *preparingAppender) Rollback() error { return nil }

type oneOrg struct{ org Org }

func (b oneOrg) Open(context.Context) error { return nil }
func (b oneOrg) Org(string) (Org, error)    { return b.org, nil }
func (b oneOrg) Close() error               { return nil }

// TestLimitedKeepsCapabilities: the limits wrapper keeps an appender's
// Prepare, and reports its failure to the request.
func TestLimitedKeepsCapabilities(t *testing.T) {
	n := 0
	errEngine := errors.New("engine down")
	for _, fail := range []error{nil, errEngine} {
		l := NewLimited(oneOrg{preparing{prepared: &n, fail: fail}}, LimitOptions{MaxSeriesPerOrg: 10})
		org, err := l.Org("acme")
		require.NoError(t, err)
		ctx, rep := WithWriteReport(context.Background())
		app := org.AppenderV2(ctx)
		_, err = app.Append(0, labels.FromStrings("__name__", "x"), 0, 1, 1, nil, nil, promstorage.AOptions{})
		require.NoError(t, err)
		p, ok := app.(Preparer)
		require.True(t, ok, "the wrapper hides Prepare")
		stored, err := p.Prepare()
		require.ErrorIs(t, err, fail)
		require.Equal(t, fail == nil, stored)
		_, commit := rep.Errors()
		require.ErrorIs(t, commit, fail)
	}
	require.Equal(t, 2, n)
}
