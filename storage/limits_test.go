package storage

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

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

// outer wraps an Org without knowing its capabilities, as the append
// watcher of the query path does.
type outer struct{ Org }

func (o outer) Unwrap() Org { return o.Org }

// TestAsThroughWrappers: a capability of the storage is found through
// every wrapper that says what it wraps.
func TestAsThroughWrappers(t *testing.T) {
	dir := t.TempDir()
	e := NewEmbedded(slog.New(slog.DiscardHandler), nil, EmbeddedOptions{Dir: dir, Retention: time.Hour})
	defer e.Close()
	l := NewLimited(e, LimitOptions{})
	o, err := l.Org("acme")
	require.NoError(t, err)
	var wrapped Org = outer{o}
	_, ok := wrapped.(StatsReporter)
	require.False(t, ok, "the outer wrapper has no HeadStats of its own")
	st, err := OrgHeadStats(wrapped, "__name__", 10)
	require.NoError(t, err)
	require.Zero(t, st.NumSeries)
	_, ok = As[StatsReporter](outer{preparing{prepared: new(int)}})
	require.False(t, ok, "a storage without statistics has none")
}
