package state

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStoreImpactLog(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *DB) {
		ctx := context.Background()
		db := open()
		require.NoError(t, db.CreateOrg(ctx, "acme"))
		require.NoError(t, db.CreateOrg(ctx, "globex"))
		a := eventRow("acme", "a", "deploy", "start", 1000)
		stop := eventRow("acme", "s", "deploy", "stop", 1500)
		b := eventRow("acme", "b", "config", "start", 2000)
		old := eventRow("acme", "o", "config", "start", 10)
		other := eventRow("globex", "g", "deploy", "start", 1000)
		require.NoError(t, insert(t, db, a, stop, b, old, other))

		unscored := func(q UnscoredQuery) []string {
			t.Helper()
			rows, err := db.UnscoredStarts(ctx, q)
			require.NoError(t, err)
			var ids []string
			for _, r := range rows {
				ids = append(ids, r.ID)
			}
			return ids
		}
		require.Equal(t, []string{"a", "b"}, unscored(UnscoredQuery{Org: "acme", MinTS: 100, Limit: 10}), "starts only, uncommitted too, not before MinTS, not another organization's")
		require.Equal(t, []string{"b"}, unscored(UnscoredQuery{Org: "acme", AfterSeq: a.Seq, MinTS: 100, Limit: 10}))
		require.Equal(t, []string{"a", "b", "o"}, unscored(UnscoredQuery{Org: "acme", Limit: 10}), "in seq order, backdated or not")
		require.Equal(t, []string{"a", "b"}, unscored(UnscoredQuery{Org: "acme", Limit: 2}), "limited")

		body := `{"verdict":"degraded"}`
		require.NoError(t, db.AddImpacts(ctx, []ImpactRow{{Seq: a.Seq, Org: "acme", Verdict: "degraded", ScoredAt: 5000, Body: body}, {Seq: old.Seq, Org: "acme", ScoredAt: 5000}}))
		require.Equal(t, []string{"b"}, unscored(UnscoredQuery{Org: "acme", Limit: 10}), "a row, even without a body, means done")

		// The first writer wins.
		require.NoError(t, db.AddImpacts(ctx, []ImpactRow{{Seq: a.Seq, Org: "acme", Verdict: "no_change", ScoredAt: 6000, Body: `{}`}, {Seq: b.Seq, Org: "acme", Verdict: "no_data", ScoredAt: 6000, Body: `{}`}}))
		got, err := db.Impacts(ctx, "acme", []int64{a.Seq, b.Seq, stop.Seq, other.Seq})
		require.NoError(t, err)
		require.Len(t, got, 2, "rows of this organization's events that have one")
		require.Equal(t, ImpactRow{Seq: a.Seq, Org: "acme", Verdict: "degraded", ScoredAt: 5000, Body: body}, got[a.Seq])
		require.Equal(t, "no_data", got[b.Seq].Verdict)

		// A score asked for again replaces the row.
		require.NoError(t, db.PutImpact(ctx, ImpactRow{Seq: a.Seq, Org: "acme", Verdict: "improved", ScoredAt: 7000, Body: `{"verdict":"improved"}`}))
		got, err = db.Impacts(ctx, "acme", []int64{a.Seq})
		require.NoError(t, err)
		require.Equal(t, "improved", got[a.Seq].Verdict)
		require.Equal(t, int64(7000), got[a.Seq].ScoredAt)

		// Many rows at once.
		var many []ImpactRow
		var seqs []int64
		for i := range 250 {
			r := eventRow("globex", "m"+string(rune('a'+i%26))+string(rune('a'+i/26)), "deploy", "start", int64(3000+i))
			require.NoError(t, insert(t, db, r))
			many = append(many, ImpactRow{Seq: r.Seq, Org: "globex", Verdict: "no_change", ScoredAt: 1, Body: `{}`})
			seqs = append(seqs, r.Seq)
		}
		require.NoError(t, db.AddImpacts(ctx, many))
		got, err = db.Impacts(ctx, "globex", seqs)
		require.NoError(t, err)
		require.Len(t, got, 250)

		row, err := db.EventByID(ctx, "acme", "b")
		require.NoError(t, err)
		require.Equal(t, b.Seq, row.Seq)
		_, err = db.EventByID(ctx, "globex", "b")
		require.ErrorIs(t, err, ErrNotFound, "ids are per organization")
	})
}

// TestUnscoredStartsPlanSQLite checks that SQLite reads a page of unscored
// starts by the starts' (org, seq) index and stops after it, instead of
// reading and sorting every start of the organization for each page.
func TestUnscoredStartsPlanSQLite(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"))
	require.NoError(t, err)
	defer db.Close()
	plan := queryPlan(t, db, `SELECT seq FROM change_events `+unscoredWhere, "acme", 0, 0, 500)
	require.Contains(t, plan, "SEARCH change_events USING INDEX change_events_starts (org=? AND seq>?)")
	for _, step := range plan {
		require.NotContains(t, step, "TEMP B-TREE", "no sort: the index gives seq order")
	}
}

// BenchmarkUnscoredStartsPass reads every page of 20,000 unscored starts,
// as one pass of the impact service does while they wait for their after
// windows.
func BenchmarkUnscoredStartsPass(b *testing.B) {
	ctx := context.Background()
	db, err := Open(filepath.Join(b.TempDir(), "state.db"))
	require.NoError(b, err)
	defer db.Close()
	require.NoError(b, db.CreateOrg(ctx, "acme"))
	const n, page = 20000, 500
	for i := 0; i < n; i += 1000 {
		batch := make([]*EventRow, 1000)
		for j := range batch {
			id := "e" + strconv.Itoa(i+j)
			batch[j] = eventRow("acme", id, "deploy-"+id, "start", int64(1000+i+j))
		}
		require.NoError(b, insert(b, db, batch...))
	}
	b.ResetTimer()
	for range b.N {
		read, cursor := 0, int64(0)
		for {
			rows, err := db.UnscoredStarts(ctx, UnscoredQuery{Org: "acme", AfterSeq: cursor, Limit: page})
			require.NoError(b, err)
			read += len(rows)
			if len(rows) < page {
				break
			}
			cursor = rows[len(rows)-1].Seq
		}
		require.Equal(b, n, read)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/pass")
}

// TestOpenByPairKeyPlan: a writer's look-up of open starts by pair key is
// a search of the one-open index, not a scan of the open starts of an
// organization.
func TestOpenByPairKeyPlan(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"))
	require.NoError(t, err)
	defer db.Close()
	where, args := openWhere(OpenQuery{Orgs: []string{"acme"}, PairKeys: []string{`{event_name="a"}`, `{event_name="b"}`}})
	plan := queryPlan(t, db, `SELECT seq FROM change_events WHERE `+where+` ORDER BY seq`, args...)
	require.Contains(t, plan, "SEARCH change_events USING INDEX change_events_one_open (org=? AND pair_key=?)")
}

// queryPlan is the steps of SQLite's plan for query.
func queryPlan(t *testing.T, db *DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.db.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return plan
}
