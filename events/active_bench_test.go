package events

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// benchService is a service on a fresh log and TSDB whose clock is now,
// an hour in the past, with open starts "deploy" of services svc-0 to
// svc-<open-1>.
func benchService(b *testing.B, open int) (svc *Service, now *time.Time) {
	dir := b.TempDir()
	db, err := state.Open(filepath.Join(dir, "state.db"))
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	require.NoError(b, db.EnsureOrg(context.Background(), "default"))
	backend := storage.NewEmbedded(slog.New(slog.DiscardHandler), nil, storage.EmbeddedOptions{
		Dir: filepath.Join(dir, "tsdb"), Retention: 30 * 24 * time.Hour, OutOfOrderWindow: DefaultLimits.Backfill,
	})
	b.Cleanup(func() { backend.Close() })
	opts := Options{ActiveResolution: 15 * time.Second, MaxDuration: 30 * 24 * time.Hour, Limits: DefaultLimits}
	svc = NewService(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), db, backend, opts)
	t := time.Now().Truncate(time.Minute).Add(-time.Hour)
	now = &t
	svc.now = func() time.Time { return *now }
	require.NoError(b, svc.Recover(context.Background()))
	for first := 0; first < open; first += 1000 {
		benchWrite(b, svc, deploys("start", *now, first, min(first+1000, open)))
	}
	return svc, now
}

// deploys is a batch of events "deploy" in state of services svc-<from>
// up to svc-<to-1>, a millisecond apart before at.
func deploys(state string, at time.Time, from, to int) []byte {
	var sb strings.Builder
	sb.WriteString("[")
	for i := from; i < to; i++ {
		if i > from {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"event_name":"deploy","event_state":"%s","timestamp":%d,"attributes":{"service":"svc-%d","env":"prod","version":"v%d"},"metadata":{"commit":"9f2c1e7"}}`,
			state, at.Add(-time.Duration(i)*time.Millisecond).UnixMilli(), i, i)
	}
	sb.WriteString("]")
	return []byte(sb.String())
}

// benchWrite writes a batch of events through the writer, as one request.
func benchWrite(b *testing.B, svc *Service, body []byte) {
	evs, err := Decode(body, svc.now(), DefaultLimits)
	require.NoError(b, err)
	req := &request{ctx: context.Background(), org: "default", events: evs, reply: make(chan reply, 1)}
	svc.process([]*request{req})
	r := <-req.reply
	require.NoError(b, r.err)
}

// BenchmarkActiveTick measures one tick of the active series with 20,000
// open starts, each due a sample: what a server with that many open change
// events spends every --events.active-resolution.
func BenchmarkActiveTick(b *testing.B) {
	svc, now := benchService(b, 20000)
	*now = now.Add(2 * ActiveLag)
	require.NoError(b, svc.runTick(context.Background()))
	b.ResetTimer()
	for range b.N {
		*now = now.Add(svc.opts.ActiveResolution)
		require.NoError(b, svc.runTick(context.Background()))
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/tick")
}

// BenchmarkWriteWithOpen measures a request of 1000 events "deploy" while
// 20,000 deploys of other services are open, as on a server where many
// services' changes share a name: 500 stops of open deploys and 500 new
// starts (so the open count stays), then the same for the next services.
func BenchmarkWriteWithOpen(b *testing.B) {
	const open = 20000
	svc, now := benchService(b, open)
	bodies := func(i int) (stops, starts []byte) {
		// Stops of the oldest 500 open deploys, starts of the next 500 services.
		from := i * 500
		*now = now.Add(time.Second)
		return deploys("stop", *now, from, from+500), deploys("start", *now, open+from, open+from+500)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		stops, starts := bodies(i)
		body := append(append(stops[:len(stops)-1:len(stops)-1], ','), starts[1:]...)
		b.StartTimer()
		benchWrite(b, svc, body)
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
