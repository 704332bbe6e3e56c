package events

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/state"
)

// TestReadOpenAsTheLog: what a tick reads of the open starts, partly from
// the starts it read before, is what the log's rows say, through starts
// opened, closed, refused and written again (rewound) between ticks, in
// two organizations.
func TestReadOpenAsTheLog(t *testing.T) {
	opts := Options{ActiveResolution: 15 * time.Second, MaxDuration: 24 * time.Hour, Limits: DefaultLimits}
	h := newHarness(t, opts)
	h.now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ev := func(state, service string, at time.Duration) []byte {
		return fmt.Appendf(nil, `{"event_name":"deploy","event_state":%q,"timestamp":%d,"attributes":{"service":%q}}`,
			state, h.now.Add(at).UnixMilli(), service)
	}
	check := func(step string) {
		t.Helper()
		tx, err := h.db.BeginEvents(context.Background())
		require.NoError(t, err)
		defer tx.Rollback()
		rows, err := tx.OpenStarts(state.OpenQuery{Orgs: []string{"default", "other"}})
		require.NoError(t, err)
		var want []openEvent
		for _, row := range rows {
			o, err := openFromRow(row)
			require.NoError(t, err)
			want = append(want, *o)
		}
		opens, err := h.svc.readOpen(tx, []string{"default", "other"})
		require.NoError(t, err)
		var got []openEvent
		for _, o := range opens {
			got = append(got, *o)
		}
		require.Equal(t, want, got, step)
	}
	tick := func(step string) {
		t.Helper()
		h.now = h.now.Add(time.Minute)
		require.NoError(t, h.svc.runTick(context.Background()))
		check(step)
	}

	for _, r := range h.write(scriptWrite{"default", ev("start", "a", 0)}, scriptWrite{"other", ev("start", "a", 0)}, scriptWrite{"default", ev("start", "b", 0)}) {
		require.NoError(t, r.err)
	}
	check("first read")
	tick("three open, advanced")
	tick("advanced again, all from the last read")

	for _, r := range h.write(scriptWrite{"default", ev("stop", "a", 0)}, scriptWrite{"other", ev("start", "c", -30*time.Second)}) {
		require.NoError(t, r.err)
	}
	tick("one closed, one opened")

	// A start whose samples fail is refused and hidden; its retry writes
	// them again and its active series from its start.
	h.failCommits = true
	require.Error(t, h.write(scriptWrite{"default", ev("start", "d", -10*time.Minute)})[0].err)
	h.failCommits = false
	tick("a refused start")
	require.NoError(t, h.write(scriptWrite{"default", ev("start", "d", -10*time.Minute)})[0].err)
	check("its retry")
	tick("advanced after the retry")
	require.Len(t, h.svc.opens, 4, "the last read keeps only the open starts")
}
