package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
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

// TestSeriesLimitWithRoom: far from the limit an appender appends without
// looking series up (it reserves room); near it, it looks each new series
// up. Either way an organization ends with exactly the limit, however
// many series are sent, by one appender or by several at once.
func TestSeriesLimitWithRoom(t *testing.T) {
	const max = 3000
	for _, writers := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("%d appenders", writers), func(t *testing.T) {
			e := NewEmbedded(slog.New(slog.DiscardHandler), nil, EmbeddedOptions{Dir: t.TempDir(), Retention: time.Hour})
			t.Cleanup(func() { e.Close() })
			l := NewLimited(e, LimitOptions{MaxSeriesPerOrg: max})
			org, err := l.Org("acme")
			require.NoError(t, err)
			var wg sync.WaitGroup
			errs := make(chan error, writers*3000+writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each sends 2,500 series, 500 of them twice.
					app := org.AppenderV2(context.Background())
					for i := range 3000 {
						ls := labels.FromStrings("__name__", "m", "w", strconv.Itoa(w), "i", strconv.Itoa(i%2500))
						if _, err := app.Append(0, ls, 0, time.Now().UnixMilli()+int64(i), 1, nil, nil, promstorage.AOptions{}); !errors.Is(err, ErrSeriesLimit) && err != nil {
							errs <- err
						}
					}
					if err := app.Commit(); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			n, _ := org.ActiveSeries()
			require.Equal(t, uint64(min(max, writers*2500)), n)
			r, _ := l.reserved.Load("acme")
			require.Equal(t, int64(0), r.(*atomic.Int64).Load(), "every reservation is given back")
			// Full: a new series is refused, a known one is not.
			app := org.AppenderV2(context.Background())
			_, err = app.Append(0, labels.FromStrings("__name__", "m", "w", "new"), 0, time.Now().Add(time.Minute).UnixMilli(), 1, nil, nil, promstorage.AOptions{})
			if writers*2500 >= max {
				require.ErrorIs(t, err, ErrSeriesLimit)
			}
			// Which writers' series were created is the race's: take one
			// that was.
			q, err := org.Querier(math.MinInt64, math.MaxInt64)
			require.NoError(t, err)
			ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
			require.True(t, ss.Next(), "no series stored: %v", ss.Err())
			known := ss.At().Labels()
			require.NoError(t, q.Close())
			_, err = app.Append(0, known, 0, time.Now().Add(time.Minute).UnixMilli(), 2, nil, nil, promstorage.AOptions{})
			require.NoError(t, err, "%s is known", known)
			require.NoError(t, app.Rollback())
		})
	}
}
