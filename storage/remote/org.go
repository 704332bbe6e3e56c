package remote

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	promstorage "github.com/prometheus/prometheus/storage"
	promremote "github.com/prometheus/prometheus/storage/remote"

	"github.com/tidemark/tidemark/storage"
)

// ErrUnavailable is a write the engine did not answer, or answered with a
// 5xx: it may succeed later.
var ErrUnavailable = errors.New("the metrics engine is unavailable")

// org is an organization's storage on the engine.
type org struct {
	b         *Backend
	slug      string
	tenant    string
	write     promremote.WriteClient
	queryable promstorage.SampleAndChunkQueryable
}

var _ storage.Org = (*org)(nil)

// Querier implements storage.Org through remote read.
func (o *org) Querier(mint, maxt int64) (promstorage.Querier, error) {
	return o.queryable.Querier(mint, maxt)
}

// ChunkQuerier implements storage.Org through remote read.
func (o *org) ChunkQuerier(mint, maxt int64) (promstorage.ChunkQuerier, error) {
	return o.queryable.ChunkQuerier(mint, maxt)
}

// ActiveSeries implements storage.Org: the engine counts (and limits) its
// tenants' series itself.
func (o *org) ActiveSeries() (uint64, bool) { return 0, false }

// AppenderV2 implements storage.Org: the samples are sent in one
// remote-write request at Prepare, or at Commit.
func (o *org) AppenderV2(ctx context.Context) promstorage.AppenderV2 {
	return &appender{o: o, ctx: ctx, byRef: map[promstorage.SeriesRef]int{}}
}

// appender collects samples by series for one remote-write request.
type appender struct {
	o        *org
	ctx      context.Context
	series   []prompb.TimeSeries
	byRef    map[promstorage.SeriesRef]int
	prepared bool
	done     bool
}

var (
	_ promstorage.ExemplarAppenderV2 = (*appender)(nil)
	_ storage.Preparer               = (*appender)(nil)
)

// at is the series of ls, or of ref when ls is empty (a ref this appender
// handed out).
func (a *appender) at(ref promstorage.SeriesRef, ls labels.Labels) (promstorage.SeriesRef, *prompb.TimeSeries, error) {
	if ls.IsEmpty() {
		if i, ok := a.byRef[ref]; ok {
			return ref, &a.series[i], nil
		}
		return 0, nil, fmt.Errorf("series ref %d without labels: %w", ref, promstorage.ErrNotFound)
	}
	ref = promstorage.SeriesRef(ls.Hash())
	if i, ok := a.byRef[ref]; ok {
		return ref, &a.series[i], nil
	}
	a.byRef[ref] = len(a.series)
	a.series = append(a.series, prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil)})
	return ref, &a.series[len(a.series)-1], nil
}

// Append implements promstorage.AppenderV2.
func (a *appender) Append(ref promstorage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts promstorage.AOptions) (promstorage.SeriesRef, error) {
	if a.done {
		return 0, errors.New("append after commit or rollback")
	}
	ref, ts, err := a.at(ref, ls)
	if err != nil {
		return 0, err
	}
	switch {
	case fh != nil:
		ts.Histograms = append(ts.Histograms, prompb.FromFloatHistogram(t, fh))
	case h != nil:
		ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(t, h))
	default:
		ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t, Value: v})
	}
	for _, e := range opts.Exemplars {
		ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: prompb.FromLabels(e.Labels, nil), Value: e.Value, Timestamp: e.Ts})
	}
	return ref, nil
}

// AppendExemplars implements promstorage.ExemplarAppenderV2.
func (a *appender) AppendExemplars(ref promstorage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (promstorage.SeriesRef, error) {
	ref, ts, err := a.at(ref, ls)
	if err != nil {
		return 0, err
	}
	for _, e := range es {
		ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: prompb.FromLabels(e.Labels, nil), Value: e.Value, Timestamp: e.Ts})
	}
	return ref, nil
}

// Prepare implements storage.Preparer: it sends the samples, and returns
// once the engine answered 2xx. A 4xx is a *storage.RejectedError; no
// answer or a 5xx wraps ErrUnavailable.
func (a *appender) Prepare() (bool, error) {
	if a.prepared || a.done {
		return true, nil
	}
	a.prepared = true
	if len(a.series) == 0 {
		return true, nil
	}
	for i := range a.series {
		ts := &a.series[i]
		sort.Slice(ts.Samples, func(x, y int) bool { return ts.Samples[x].Timestamp < ts.Samples[y].Timestamp })
		sort.Slice(ts.Histograms, func(x, y int) bool { return ts.Histograms[x].Timestamp < ts.Histograms[y].Timestamp })
	}
	req := &prompb.WriteRequest{Timeseries: a.series}
	raw, err := req.Marshal()
	if err != nil {
		return false, fmt.Errorf("encode remote write: %w", err)
	}
	if err := a.o.b.store(a.ctx, a.o.write, snappy.Encode(nil, raw)); err != nil {
		return false, err
	}
	return true, nil
}

// Commit implements promstorage.AppenderV2.
func (a *appender) Commit() error {
	_, err := a.Prepare()
	a.done, a.series = true, nil
	return err
}

// Rollback implements promstorage.AppenderV2. Samples already sent by
// Prepare stay in the engine.
func (a *appender) Rollback() error {
	a.done, a.series = true, nil
	return nil
}

// statusRE reads the status of an error of Prometheus's remote-write
// client ("server returned HTTP status 400 Bad Request: ...").
var statusRE = regexp.MustCompile(`server returned HTTP status (\d{3})[^:]*: (.*)`)

// store sends one encoded request, retrying once what may be passing.
func (b *Backend) store(ctx context.Context, wc promremote.WriteClient, body []byte) error {
	var err error
	for attempt := range 2 {
		start := time.Now()
		_, err = wc.Store(ctx, body, attempt)
		var rec promremote.RecoverableError
		switch {
		case err == nil:
			b.observe("write", 200, start)
			return nil
		case errors.As(err, &rec):
			code := 0
			if m := statusRE.FindStringSubmatch(err.Error()); m != nil {
				code, _ = strconv.Atoi(m[1])
			}
			b.observe("write", code, start)
			if attempt == 0 && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		default:
			m := statusRE.FindStringSubmatch(err.Error())
			if m == nil {
				b.observe("write", 0, start)
				return fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
			code, _ := strconv.Atoi(m[1])
			b.observe("write", code, start)
			return &storage.RejectedError{Status: code, Message: m[2]}
		}
	}
	return err
}
