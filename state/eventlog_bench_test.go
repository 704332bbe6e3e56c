package state

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkInsertEvents measures the event log's part of a batch of 1000
// new events (half starts that stay open, half point events), as the
// writer stores them: seqs, the rows, the commit (an fsync).
func BenchmarkInsertEvents(b *testing.B) {
	ctx := context.Background()
	db, err := Open(filepath.Join(b.TempDir(), "state.db"))
	require.NoError(b, err)
	defer db.Close()
	require.NoError(b, db.CreateOrg(ctx, "acme"))
	const batch = 1000
	n := 0
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		rows := make([]*EventRow, batch)
		for j := range rows {
			n++
			name := fmt.Sprintf("deploy-%d", n)
			lbls := fmt.Sprintf(`{"env":"prod","service":"svc-%d"}`, n%100)
			rows[j] = &EventRow{Org: "acme", ID: fmt.Sprintf("0192f1c2a3b4%016x", n), DedupKey: fmt.Sprintf(`ev:%s%sstart%s%d%s{env="prod", service="svc-%d"}`, name, "\x1f", "\x1f", 1795597200000+n, "\x1f", n%100),
				Name: name, State: "start", TS: 1795597200000 + int64(n), Value: 1, Labels: lbls,
				PairKey:  fmt.Sprintf(`{env="prod", event_name="%s", service="svc-%d"}`, name, n%100),
				Body:     fmt.Sprintf(`{"event_name":"%s","event_state":"start","timestamp":%d,"attributes":{"service":"svc-%d","env":"prod"},"metadata":{"commit":"9f2c1e7"}}`, name, 1795597200000+n, n%100),
				Metadata: `{"commit":"9f2c1e7"}`, Links: `[]`, ReceivedAt: 1795597200000 + int64(n), Open: n%2 == 0,
				ActiveNext: sql.NullInt64{Int64: 1795597215000, Valid: n%2 == 0}}
		}
		b.StartTimer()
		require.NoError(b, insert(b, db, rows...))
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
}
