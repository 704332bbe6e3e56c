package query

import (
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/storage"
)

// preparingApp is an appender that stores at Prepare, as a remote
// engine's does.
type preparingApp struct{ prepared int }

func (a *preparingApp) Append(promstorage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, promstorage.AOptions) (promstorage.SeriesRef, error) {
	return 1, nil
}
func (a *preparingApp) Prepare() (bool, error) { a.prepared++; return true, nil }
func (a *preparingApp) Commit() error          { return nil }
func (a *preparingApp) Rollback() error        { return nil }

// TestNotifyingAppenderKeepsPrepare: the append watcher is a wrapper and
// keeps its appender's Prepare; what Prepare stored is told of then.
func TestNotifyingAppenderKeepsPrepare(t *testing.T) {
	inner := &preparingApp{}
	var told []Appended
	app := NotifyingAppender(inner, func(a Appended) { told = append(told, a) })
	_, err := app.Append(0, labels.FromStrings("__name__", "m"), 0, 1000, 1, nil, nil, promstorage.AOptions{})
	require.NoError(t, err)
	p, ok := app.(storage.Preparer)
	require.True(t, ok, "the watcher hides Prepare")
	stored, err := p.Prepare()
	require.NoError(t, err)
	require.True(t, stored)
	require.Equal(t, 1, inner.prepared)
	require.Equal(t, []Appended{{"m": 1000}}, told)
}
