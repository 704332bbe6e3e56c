package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage/remote"
)

// maxPerRequest is how many samples one remote-write request carries, as
// Prometheus's queue manager sends by default (max_samples_per_send).
const maxPerRequest = 2000

// writer sends remote write 1.0 requests with Prometheus's own client.
type writer struct {
	client remote.WriteClient
}

func newWriter(rawURL, token string) (*writer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	cfg := config_util.DefaultHTTPClientConfig
	if token != "" {
		cfg.Authorization = &config_util.Authorization{Type: "Bearer", Credentials: config_util.Secret(token)}
	}
	c, err := remote.NewWriteClient("bench", &remote.ClientConfig{
		URL:              &config_util.URL{URL: u},
		Timeout:          model.Duration(2 * time.Minute),
		HTTPClientConfig: cfg,
		WriteProtoMsg:    remoteapi.WriteV1MessageType,
	})
	if err != nil {
		return nil, fmt.Errorf("remote-write client for %s: %w", rawURL, err)
	}
	return &writer{client: c}, nil
}

// store sends one snappy-compressed request, retrying what Prometheus's
// queue manager retries (5xx, 429) for up to a minute.
func (w *writer) store(ctx context.Context, body []byte) error {
	deadline := time.Now().Add(time.Minute)
	for attempt := 0; ; attempt++ {
		_, err := w.client.Store(ctx, body, attempt)
		if err == nil {
			return nil
		}
		var rerr remote.RecoverableError
		if !errors.As(err, &rerr) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// encoder turns series and samples into remote-write bodies, reusing its
// buffers; one per goroutine.
type encoder struct {
	req prompb.WriteRequest
	raw []byte
	out []byte
	smp []prompb.Sample
}

func (e *encoder) reset() {
	e.req.Timeseries = e.req.Timeseries[:0]
	e.smp = e.smp[:0]
}

func (e *encoder) add(ls []prompb.Label, t int64, v float64) {
	if len(e.smp) == cap(e.smp) {
		// A new backing array: earlier series keep pointing at the old one.
		e.smp = make([]prompb.Sample, 0, maxPerRequest)
	}
	e.smp = append(e.smp, prompb.Sample{Timestamp: t, Value: v})
	n := len(e.smp)
	e.req.Timeseries = append(e.req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: e.smp[n-1 : n : n]})
}

func (e *encoder) encode() ([]byte, error) {
	n := e.req.Size()
	if cap(e.raw) < n {
		e.raw = make([]byte, n)
	}
	e.raw = e.raw[:n]
	if _, err := e.req.MarshalToSizedBuffer(e.raw); err != nil {
		return nil, err
	}
	e.out = snappy.Encode(e.out[:cap(e.out)], e.raw)
	return e.out, nil
}

// timeline is the timestamps (ms) of the scrapes to write, ascending: a
// coarse history followed by a recent part at the scrape interval.
type timeline []int64

func newTimeline(end time.Time, history, histStep, recent, recentStep time.Duration) timeline {
	var ts timeline
	recentStart := end.Add(-recent)
	for t := end.Add(-history); t.Before(recentStart); t = t.Add(histStep) {
		ts = append(ts, t.UnixMilli())
	}
	for t := recentStart; !t.After(end); t = t.Add(recentStep) {
		ts = append(ts, t.UnixMilli())
	}
	return ts
}

// ingestPlan is what writeSeries sends: every series of set at every time of
// the timeline, in time order per series, from shards concurrent senders
// (each series always in the same shard, as Prometheus's queue manager
// does). stageFrom is when the canary stage series starts (0: never).
type ingestPlan struct {
	set       *seriesSet
	times     timeline
	shards    int
	stageFrom int64
}

// writeSeries sends plan and returns how many samples were accepted. A
// shard may run at most a few scrapes ahead of the slowest, so that no
// sample falls behind a TSDB head's appendable window.
func writeSeries(ctx context.Context, w *writer, plan ingestPlan) (int64, error) {
	const lead = 3
	var (
		sent     atomic.Int64
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		done     = make([]int, plan.shards) // scrapes each shard has finished
		firstErr error
	)
	minDone := func() int {
		m := done[0]
		for _, d := range done[1:] {
			m = min(m, d)
		}
		return m
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for shard := range plan.shards {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(shard), 7))
			var mine []int // series indices of this shard: whole endpoints
			for i := range plan.set.len() {
				if (i/seriesPerEndpoint)%plan.shards == shard {
					mine = append(mine, i)
				}
			}
			vals := make([]float64, len(mine))
			enc := &encoder{}
			stage := stageSeries()
			flush := func() error {
				if len(enc.req.Timeseries) == 0 {
					return nil
				}
				body, err := enc.encode()
				if err != nil {
					return err
				}
				if err := w.store(ctx, body); err != nil {
					return err
				}
				sent.Add(int64(len(enc.req.Timeseries)))
				enc.reset()
				return nil
			}
			var prevT int64
			for r, t := range plan.times {
				mu.Lock()
				for r > minDone()+lead && firstErr == nil {
					cond.Wait()
				}
				failed := firstErr != nil
				mu.Unlock()
				if failed {
					return
				}
				scale := 1.0
				if r > 0 {
					scale = float64(t-prevT) / 15000
				}
				prevT = t
				jitter := 1.0
				for k, i := range mine {
					if k == 0 || i/seriesPerEndpoint != mine[k-1]/seriesPerEndpoint {
						jitter = 0.7 + 0.6*rng.Float64() // One per endpoint: buckets stay cumulative.
					}
					if plan.set.gauge[i] {
						vals[k] = plan.set.inc[i] * jitter
					} else {
						vals[k] += plan.set.inc[i] * scale * jitter
					}
					enc.add(plan.set.labels[i], t, vals[k])
					if len(enc.req.Timeseries) == maxPerRequest {
						if err := flush(); err != nil {
							setErr(&mu, cond, &firstErr, err)
							return
						}
					}
				}
				if shard == 0 && plan.stageFrom != 0 && t >= plan.stageFrom {
					enc.add(stage, t, 1)
				}
				if err := flush(); err != nil {
					setErr(&mu, cond, &firstErr, err)
					return
				}
				mu.Lock()
				done[shard] = r + 1
				cond.Broadcast()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return sent.Load(), firstErr
}

func setErr(mu *sync.Mutex, cond *sync.Cond, dst *error, err error) {
	mu.Lock()
	if *dst == nil {
		*dst = err
	}
	cond.Broadcast()
	mu.Unlock()
}
