package storage

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
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
