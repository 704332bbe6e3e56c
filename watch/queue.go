package watch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidemark/tidemark/client"
)

// queue holds the events waiting to be written, in the order they were
// decided. One writer goroutine drains it (run), so events reach the server
// in that order: a start before its stop.
type queue struct {
	logger *slog.Logger
	sink   Sink
	// max is the most events held; beyond it the oldest are dropped (the
	// server has been unreachable for long).
	max      int
	maxBatch int
	// minBackoff and maxBackoff bound the wait before the writer tries
	// again after the sink failed.
	minBackoff, maxBackoff time.Duration

	mu     sync.Mutex
	items  []client.Event
	signal chan struct{}
	// busy counts the events taken by the writer and not yet written.
	busy int

	written  *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	failures prometheus.Counter
}

func (q *queue) push(evs []client.Event) {
	q.mu.Lock()
	q.items = append(q.items, evs...)
	if over := len(q.items) - q.max; over > 0 {
		q.items = q.items[over:]
		q.dropped.WithLabelValues("overflow").Add(float64(over))
		q.logger.Warn("event queue full; dropped the oldest events", "dropped", over, "max", q.max)
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// len is the number of events queued or being written.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) + q.busy
}

func (q *queue) take() []client.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.items), q.maxBatch)
	out := make([]client.Event, n)
	copy(out, q.items)
	q.items = q.items[n:]
	q.busy = n
	return out
}

func (q *queue) settle() {
	q.mu.Lock()
	q.busy = 0
	q.mu.Unlock()
}

// run writes queued events until stop is closed and the queue is empty,
// or ctx ends: closing stop lets the writer finish what is queued.
func (q *queue) run(ctx context.Context, stop <-chan struct{}) {
	for ctx.Err() == nil {
		batch := q.take()
		if len(batch) == 0 {
			q.settle()
			select {
			case <-q.signal:
				continue
			case <-stop:
				if q.len() == 0 {
					return
				}
				continue
			case <-ctx.Done():
				return
			}
		}
		q.write(ctx, batch)
		q.settle()
	}
	if n := q.len(); n > 0 {
		q.dropped.WithLabelValues("shutdown").Add(float64(n))
		q.logger.Warn("events not written before shutdown", "events", n)
	}
}

// write writes a batch, retrying until it is stored, refused or ctx ends.
// A refused batch is written again event by event, so that one bad event
// does not cost the others.
func (q *queue) write(ctx context.Context, batch []client.Event) {
	backoff := q.minBackoff
	for {
		err := q.sink.Write(ctx, batch)
		if err == nil {
			for _, ev := range batch {
				q.written.WithLabelValues(ev.Name, ev.State).Inc()
			}
			return
		}
		var rej *client.RejectedError
		if errors.As(err, &rej) {
			if len(batch) == 1 {
				q.dropped.WithLabelValues("rejected").Inc()
				q.logger.Error("event refused by the server; dropped", "event", batch[0].Name, "state", batch[0].State, "id", batch[0].ID, "err", err)
				return
			}
			for _, ev := range batch {
				q.write(ctx, []client.Event{ev})
			}
			return
		}
		if ctx.Err() != nil {
			q.dropped.WithLabelValues("shutdown").Add(float64(len(batch)))
			q.logger.Warn("events not written before shutdown", "events", len(batch), "err", err)
			return
		}
		q.failures.Inc()
		q.logger.Warn("writing events failed; will retry", "events", len(batch), "retry_in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		backoff = min(backoff*2, q.maxBackoff)
	}
}
