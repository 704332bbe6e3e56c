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

// BenchmarkActiveTick measures one tick of the active series with 20,000
// open starts, each due a sample: what a server with that many open change
// events spends every --events.active-resolution.
func BenchmarkActiveTick(b *testing.B) {
	const open = 20000
	dir := b.TempDir()
	db, err := state.Open(filepath.Join(dir, "state.db"))
	require.NoError(b, err)
	defer db.Close()
	require.NoError(b, db.EnsureOrg(context.Background(), "default"))
	backend := storage.NewEmbedded(slog.New(slog.DiscardHandler), nil, storage.EmbeddedOptions{
		Dir: filepath.Join(dir, "tsdb"), Retention: 30 * 24 * time.Hour, OutOfOrderWindow: DefaultLimits.Backfill,
	})
	defer backend.Close()
	opts := Options{ActiveResolution: 15 * time.Second, MaxDuration: 30 * 24 * time.Hour, Limits: DefaultLimits}
	svc := NewService(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), db, backend, opts)
	now := time.Now().Truncate(time.Minute).Add(-time.Hour)
	svc.now = func() time.Time { return now }
	require.NoError(b, svc.Recover(context.Background()))
	for first := 0; first < open; first += 1000 {
		var sb strings.Builder
		sb.WriteString("[")
		for i := first; i < first+1000; i++ {
			if i > first {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `{"event_name":"deploy","event_state":"start","timestamp":%d,"attributes":{"service":"svc-%d","env":"prod","version":"v%d"},"metadata":{"commit":"9f2c1e7"}}`,
				now.Add(-time.Duration(i)*time.Millisecond).UnixMilli(), i, i)
		}
		sb.WriteString("]")
		evs, err := Decode([]byte(sb.String()), now, DefaultLimits)
		require.NoError(b, err)
		req := &request{ctx: context.Background(), org: "default", events: evs, reply: make(chan reply, 1)}
		svc.process([]*request{req})
		r := <-req.reply
		require.NoError(b, r.err)
	}
	now = now.Add(2 * ActiveLag)
	require.NoError(b, svc.runTick(context.Background()))
	b.ResetTimer()
	for range b.N {
		now = now.Add(opts.ActiveResolution)
		require.NoError(b, svc.runTick(context.Background()))
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/tick")
}
