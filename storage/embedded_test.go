package storage

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/stretchr/testify/require"
)

// counter is the value of a counter of reg by its name, for org acme.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "org" && l.GetValue() == "acme" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// appendSpan commits one sample a minute of series s from 'from' up to to.
func appendSpan(t *testing.T, org Org, s string, from, to time.Time) {
	app := org.AppenderV2(context.Background())
	ls := labels.FromStrings("__name__", "x", "s", s)
	for ts := from; ts.Before(to); ts = ts.Add(time.Minute) {
		_, err := app.Append(0, ls, 0, ts.UnixMilli(), 1, nil, nil, promstorage.AOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
}

// TestFirstCompactionWaitsForAChunkFile: a new organization's head is not
// compacted (and truncated) before its TSDB has cut a head chunk file, here
// by out-of-order appends, or before firstCutWait has passed.
func TestFirstCompactionWaitsForAChunkFile(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	open := func(t *testing.T) (*prometheus.Registry, embeddedOrg) {
		reg := prometheus.NewRegistry()
		e := NewEmbedded(slog.New(slog.DiscardHandler), reg, EmbeddedOptions{Dir: t.TempDir(), Retention: 15 * 24 * time.Hour, OutOfOrderWindow: 9 * 24 * time.Hour})
		t.Cleanup(func() { require.NoError(t, e.Close()) })
		org, err := e.Org("acme")
		require.NoError(t, err)
		return reg, org.(embeddedOrg)
	}
	// Two days in order, of a series whose chunks the head holds in memory
	// for now: the head is compactable at once.
	backfill := func(t *testing.T, reg *prometheus.Registry, org embeddedOrg) {
		appendSpan(t, org, "in-order", now.Add(-48*time.Hour), now)
		require.Eventually(t, func() bool {
			return counter(t, reg, "prometheus_tsdb_compactions_skipped_total") >= 1
		}, 10*time.Second, 10*time.Millisecond, "the commit triggers a compaction")
		require.Empty(t, org.Blocks(), "no compaction before a chunk file is cut")
		require.Equal(t, 0, lastChunkFile(org.Dir()))
	}
	compacted := func(t *testing.T, org embeddedOrg, within time.Duration) {
		require.Eventually(t, func() bool {
			// Each commit of a compactable head triggers a compaction.
			appendSpan(t, org, "in-order", now, now.Add(time.Minute))
			return len(org.Blocks()) > 0
		}, within, 50*time.Millisecond, "compacted once allowed")
	}

	t.Run("out-of-order chunk", func(t *testing.T) {
		reg, org := open(t)
		backfill(t, reg, org)
		// Older than the head takes in order: out of order, m-mapped 32
		// samples at a time into the first chunk file.
		appendSpan(t, org, "ooo", now.Add(-47*time.Hour), now.Add(-46*time.Hour))
		require.Equal(t, 1, lastChunkFile(org.Dir()))
		compacted(t, org, 10*time.Second)
	})

	t.Run("no chunk within the wait", func(t *testing.T) {
		defer func(w time.Duration) { firstCutWait = w }(firstCutWait)
		firstCutWait = 2 * time.Second
		reg, org := open(t)
		start := time.Now()
		backfill(t, reg, org)
		compacted(t, org, 10*time.Second)
		require.GreaterOrEqual(t, time.Since(start), firstCutWait)
	})
}

// TestWALCompression: with snappy (the default of the server, as of
// Prometheus) the write-ahead log is smaller than with none, and a WAL
// written one way replays under the other, so the setting can change
// between restarts.
func TestWALCompression(t *testing.T) {
	const series, samples = 500, 20
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	write := func(t *testing.T, org Org, first int) {
		app := org.AppenderV2(context.Background())
		for i := range series {
			ls := labels.FromStrings("__name__", "http_requests_total", "service", "checkout", "instance", fmt.Sprintf("10.0.0.%d:8080", i))
			for j := first; j < first+samples; j++ {
				_, err := app.Append(0, ls, 0, t0.Add(time.Duration(j)*time.Second).UnixMilli(), float64(j), nil, nil, promstorage.AOptions{})
				require.NoError(t, err)
			}
		}
		require.NoError(t, app.Commit())
	}
	count := func(t *testing.T, org Org) int {
		q, err := org.Querier(math.MinInt64, math.MaxInt64)
		require.NoError(t, err)
		defer q.Close()
		n := 0
		ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "http_requests_total"))
		for ss.Next() {
			it := ss.At().Iterator(nil)
			for it.Next() != chunkenc.ValNone {
				n++
			}
			require.NoError(t, it.Err())
		}
		require.NoError(t, ss.Err())
		return n
	}
	open := func(t *testing.T, dir string, c compression.Type) (*Embedded, Org) {
		e := NewEmbedded(slog.New(slog.DiscardHandler), nil, EmbeddedOptions{Dir: dir, Retention: 15 * 24 * time.Hour, WALCompression: c})
		require.NoError(t, e.Open(context.Background()))
		org, err := e.Org("acme")
		require.NoError(t, err)
		return e, org
	}
	walBytes := func(t *testing.T, dir string) int64 {
		var n int64
		require.NoError(t, filepath.WalkDir(filepath.Join(dir, "acme", "wal"), func(_ string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			n += info.Size()
			return err
		}))
		return n
	}

	sizes := map[compression.Type]int64{}
	for _, c := range []compression.Type{compression.None, compression.Snappy} {
		dir := t.TempDir()
		e, org := open(t, dir, c)
		write(t, org, 0)
		require.NoError(t, e.Close())
		sizes[c] = walBytes(t, dir)

		// Replayed under the other setting, then written to with it.
		other := compression.Snappy
		if c == compression.Snappy {
			other = compression.None
		}
		e, org = open(t, dir, other)
		require.Equal(t, series*samples, count(t, org), "%s WAL replayed with %s", c, other)
		write(t, org, samples)
		require.NoError(t, e.Close())
		e, org = open(t, dir, c)
		require.Equal(t, 2*series*samples, count(t, org), "WAL of %s and %s records replayed with %s", c, other, c)
		require.NoError(t, e.Close())
	}
	require.Less(t, sizes[compression.Snappy], sizes[compression.None]*3/4, "snappy WAL against none: %v", sizes)
}
