package watch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
)

func newTestQueue(sink Sink) *queue {
	return &queue{
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)), sink: sink, max: 5, maxBatch: 3,
		minBackoff: time.Millisecond, maxBackoff: 5 * time.Millisecond, signal: make(chan struct{}, 1),
		written:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "w"}, []string{"event_name", "event_state"}),
		dropped:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"reason"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "f"}),
	}
}

func ev(name string) client.Event { return client.Event{Name: name, State: "start", ID: name} }

// TestQueue: batches in order; a failing server is retried until it
// answers; a refused batch is written event by event so that only the bad
// event is lost; the oldest events go when the queue is full.
func TestQueue(t *testing.T) {
	rec := newRecorder()
	failures := 2
	rec.fail = func(evs []client.Event) error {
		for _, e := range evs {
			if e.Name == "bad" {
				return &client.RejectedError{Status: 400, Message: "bad event"}
			}
		}
		if failures > 0 {
			failures--
			return errors.New("connection refused")
		}
		return nil
	}
	q := newTestQueue(rec)
	q.push([]client.Event{ev("a"), ev("b"), ev("bad"), ev("c")})
	stop := make(chan struct{})
	close(stop)
	q.run(context.Background(), stop)
	require.Equal(t, []string{"a", "b", "c"}, names(rec.events()))
	require.Equal(t, 1.0, testutil.ToFloat64(q.dropped.WithLabelValues("rejected")))
	require.Equal(t, 2.0, testutil.ToFloat64(q.failures))

	q.push([]client.Event{ev("1"), ev("2"), ev("3"), ev("4"), ev("5"), ev("6"), ev("7")})
	require.Equal(t, 5, q.len())
	require.Equal(t, 2.0, testutil.ToFloat64(q.dropped.WithLabelValues("overflow")))
	q.run(context.Background(), stop)
	require.Equal(t, []string{"a", "b", "c", "3", "4", "5", "6", "7"}, names(rec.events()))
}

func names(evs []client.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name
	}
	return out
}
