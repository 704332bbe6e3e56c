package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testservices"
)

// eachStore runs a test on both implementations of the contracts: SQLite
// in a file, and a fresh database on a real PostgreSQL server.
func eachStore(t *testing.T, f func(t *testing.T, open func() *DB)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		f(t, func() *DB {
			db, err := Open(path)
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := testservices.Postgres(t)
		f(t, func() *DB {
			db, err := OpenURL(context.Background(), url, "")
			require.NoError(t, err)
			require.Equal(t, "postgres", db.Dialect())
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
}

func eventRow(org, id, name, state string, ts int64) *EventRow {
	return &EventRow{Org: org, ID: id, DedupKey: "id:" + id, Name: name, State: state, TS: ts, Value: 1, Labels: `{}`,
		PairKey: `{event_name="` + name + `"}`, Body: `{}`, Metadata: `null`, Links: `[]`, ReceivedAt: ts}
}

// insert stores rows in one transaction, with seqs from the database.
func insert(t testing.TB, db *DB, rows ...*EventRow) error {
	t.Helper()
	err := insertErr(context.Background(), db, rows)
	require.NotErrorIs(t, err, errBegin)
	return err
}

// errBegin marks insertErr's errors before Insert.
var errBegin = errors.New("before the insert")

// insertErr is insert for any goroutine: every error is returned.
func insertErr(ctx context.Context, db *DB, rows []*EventRow) error {
	tx, err := db.BeginEvents(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errBegin, err)
	}
	defer tx.Rollback()
	first, err := tx.AllocSeqs(len(rows))
	if err != nil {
		return fmt.Errorf("%w: %w", errBegin, err)
	}
	for i, r := range rows {
		r.Seq = first + int64(i)
	}
	if err := tx.Insert(rows); err != nil {
		return err
	}
	return tx.Commit()
}

func TestStoreOrgsAndTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *DB) {
		ctx := context.Background()
		db := open()
		require.NoError(t, db.CreateOrg(ctx, "acme"))
		require.ErrorIs(t, db.CreateOrg(ctx, "acme"), ErrExists)
		require.NoError(t, db.EnsureOrg(ctx, "acme"))
		tok := NewToken()
		require.NoError(t, db.AddToken(ctx, "acme", ScopeRead, "grafana", SourceCLI, tok))
		require.ErrorIs(t, db.AddToken(ctx, "acme", ScopeRead, "again", SourceCLI, tok), ErrExists, "the same token twice is refused by its unique hash")
		require.ErrorIs(t, db.AddToken(ctx, "nope", ScopeRead, "x", SourceCLI, NewToken()), ErrNotFound)
		ti, err := db.LookupTokenHash(ctx, HashToken(tok))
		require.NoError(t, err)
		require.Equal(t, TokenInfo{Org: "acme", Scope: ScopeRead, Name: "grafana"}, ti)
		require.NoError(t, db.PutRuleGroup(ctx, RuleGroupRow{Org: "acme", Namespace: "ns", Name: "g", Body: "name: g\nrules: []\n"}))
		rg, err := db.RuleGroup(ctx, "acme", "ns", "g")
		require.NoError(t, err)
		require.Equal(t, "name: g\nrules: []\n", rg.Body)
		require.ErrorIs(t, db.DeleteRuleGroup(ctx, "acme", "ns", "nope"), ErrNotFound)
	})
}

func TestStoreEventLog(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *DB) {
		ctx := context.Background()
		db := open()
		require.NoError(t, db.CreateOrg(ctx, "acme"))
		start := eventRow("acme", "a", "deploy", "start", 1000)
		start.Open = true
		point := eventRow("acme", "b", "config", "start", 2000)
		require.NoError(t, insert(t, db, start, point))
		require.Equal(t, start.Seq+1, point.Seq, "seqs are consecutive within a transaction")

		// The database refuses a duplicate id, and a second open start of
		// the same series, and then stores nothing of the statement.
		require.ErrorIs(t, insert(t, db, eventRow("acme", "c", "other", "start", 3000), eventRow("acme", "a", "deploy", "start", 9999)), ErrDuplicate)
		again := eventRow("acme", "d", "deploy", "start", 4000)
		again.Open = true
		require.ErrorIs(t, insert(t, db, again), ErrDuplicate)
		again.Open = false
		require.NoError(t, insert(t, db, again), "a start of an open series is stored, not open")
		if db.Dialect() == "sqlite" {
			require.Equal(t, point.Seq+1, again.Seq, "a rolled-back transaction gives its seqs back")
		} else {
			require.Greater(t, again.Seq, point.Seq+2, "seqs are taken outside the transaction: its rollback leaves a gap")
		}

		oe, err := db.OpenEvents(ctx, OpenQuery{Orgs: []string{"acme"}})
		require.NoError(t, err)
		require.Len(t, oe, 1)
		require.Equal(t, start.Seq, oe[0].Seq)
		oe, err = db.OpenEvents(ctx, OpenQuery{Orgs: []string{"acme"}, Names: []string{}})
		require.NoError(t, err)
		require.Empty(t, oe)

		tx, err := db.BeginEvents(ctx)
		require.NoError(t, err)
		open1, err := tx.OpenStarts(OpenQuery{Orgs: []string{"acme"}, Names: []string{"deploy"}})
		require.NoError(t, err)
		require.Len(t, open1, 1)
		require.Equal(t, start.Seq, open1[0].Seq)
		require.False(t, open1[0].ActiveNext.Valid)
		byKey, err := tx.OpenStarts(OpenQuery{Orgs: []string{"acme"}, PairKeys: []string{`{event_name="other"}`, start.PairKey}})
		require.NoError(t, err)
		require.Len(t, byKey, 1, "by pair key")
		require.Equal(t, start.Seq, byKey[0].Seq)
		byKey, err = tx.OpenStarts(OpenQuery{Orgs: []string{"acme"}, PairKeys: []string{point.PairKey}})
		require.NoError(t, err)
		require.Empty(t, byKey, "a pair key with no open start")
		byKey, err = tx.OpenStarts(OpenQuery{Orgs: []string{"acme"}, PairKeys: []string{}})
		require.NoError(t, err)
		require.Empty(t, byKey, "no pair keys select none")
		require.NoError(t, tx.SetActive(WrittenTo(start.Seq, 16000)))
		prog, err := tx.OpenProgress(OpenQuery{Orgs: []string{"acme"}})
		require.NoError(t, err)
		require.Equal(t, []Progress{{Seq: start.Seq, ActiveNext: sql.NullInt64{Int64: 16000, Valid: true}}}, prog, "what the transaction wrote")
		prog, err = tx.OpenProgress(OpenQuery{Orgs: []string{}})
		require.NoError(t, err)
		require.Empty(t, prog)
		after, err := tx.OpenStarts(OpenQuery{Orgs: []string{"acme"}, AfterSeq: start.Seq - 1})
		require.NoError(t, err)
		require.Len(t, after, 1)
		after, err = tx.OpenStarts(OpenQuery{Orgs: []string{"acme"}, AfterSeq: start.Seq})
		require.NoError(t, err)
		require.Empty(t, after, "only greater seqs")
		none, err := tx.OpenStarts(OpenQuery{Orgs: []string{"globex"}})
		require.NoError(t, err)
		require.Empty(t, none)
		none, err = tx.OpenStarts(OpenQuery{Orgs: []string{}})
		require.NoError(t, err)
		require.Empty(t, none, "no organizations selects none")
		require.NoError(t, tx.Commit())

		uncommitted, err := db.UncommittedEvents(ctx, UncommittedQuery{Orgs: []string{"acme"}, ReceivedBefore: 1500})
		require.NoError(t, err)
		require.Len(t, uncommitted, 1, "received before 1500")
		tx, err = db.BeginEvents(ctx)
		require.NoError(t, err)
		require.NoError(t, tx.MarkCommitted([]int64{start.Seq, point.Seq, again.Seq}))
		require.NoError(t, tx.Commit())
		uncommitted, err = db.UncommittedEvents(ctx, UncommittedQuery{})
		require.NoError(t, err)
		require.Empty(t, uncommitted)

		// A stop closes the start: it is no longer open, and another
		// start of the series may open.
		stop := eventRow("acme", "e", "deploy", "stop", 5000)
		tx, err = db.BeginEvents(ctx)
		require.NoError(t, err)
		first, err := tx.AllocSeqs(1)
		require.NoError(t, err)
		stop.Seq = first
		stop.PairSeq = sql.NullInt64{Int64: start.Seq, Valid: true}
		require.NoError(t, tx.Insert([]*EventRow{stop}))
		require.NoError(t, tx.ClosePair(start.Seq, stop.Seq, 4000))
		require.NoError(t, tx.Commit())
		got, err := db.EventBySeq(ctx, start.Seq)
		require.NoError(t, err)
		require.False(t, got.Open)
		require.Equal(t, int64(16000), got.ActiveNext.Int64)
		require.Equal(t, int64(4000), got.DurationMS.Int64)
		n, err := db.OpenCount(ctx)
		require.NoError(t, err)
		require.Equal(t, 0, n)
		reopen := eventRow("acme", "f", "deploy", "start", 6000)
		reopen.Open = true
		require.NoError(t, insert(t, db, reopen))

		rows, err := db.ListEvents(ctx, EventQuery{Org: "acme", Start: 0, End: 10000, Limit: 10})
		require.NoError(t, err)
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		require.Equal(t, []string{"f", "e", "d", "b", "a"}, ids, "marked or not, newest first")

		// A hidden row is left out until it is marked committed; Hide
		// leaves committed rows alone.
		tx, err = db.BeginEvents(ctx)
		require.NoError(t, err)
		require.NoError(t, tx.Hide([]int64{point.Seq, stop.Seq, reopen.Seq}))
		require.NoError(t, tx.Commit())
		list := func() []string {
			rows, err := db.ListEvents(ctx, EventQuery{Org: "acme", Start: 0, End: 10000, Limit: 10})
			require.NoError(t, err)
			var ids []string
			for _, r := range rows {
				ids = append(ids, r.ID)
			}
			return ids
		}
		require.Equal(t, []string{"d", "b", "a"}, list(), "e and f hidden; b committed")
		tx, err = db.BeginEvents(ctx)
		require.NoError(t, err)
		require.NoError(t, tx.MarkCommitted([]int64{reopen.Seq}))
		require.NoError(t, tx.Commit())
		require.Equal(t, []string{"f", "d", "b", "a"}, list())
		_, err = db.EventBySeq(ctx, 1e9)
		require.ErrorIs(t, err, ErrNotFound)
	})
}

// TestStoreSetActiveMany: one SetActive records the progress of many
// starts (more than one statement of them), each its own, and of those
// only; a later one moves them again; a seq named twice keeps the last.
// Every reader of the rows sees it.
func TestStoreSetActiveMany(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *DB) {
		ctx := context.Background()
		db := open()
		require.NoError(t, db.CreateOrg(ctx, "acme"))
		var rows []*EventRow
		for i := range 300 {
			r := eventRow("acme", fmt.Sprint("s", i), fmt.Sprint("deploy-", i), "start", 1000)
			r.Open = true
			rows = append(rows, r)
		}
		rows[299].ActiveNext = sql.NullInt64{Int64: 1500, Valid: true}
		require.NoError(t, insert(t, db, rows...))
		var ps []Progress
		for i, r := range rows[:299] {
			ps = append(ps, WrittenTo(r.Seq, int64(16000+i)))
		}
		tx, err := db.BeginEvents(ctx)
		require.NoError(t, err)
		defer tx.Rollback()
		require.NoError(t, tx.SetActive(ps...))
		require.NoError(t, tx.SetActive(WrittenTo(rows[0].Seq, 31000), WrittenTo(rows[1].Seq, 31000), WrittenTo(rows[0].Seq, 46000)))
		require.NoError(t, tx.SetActive())
		require.ErrorContains(t, tx.SetActive(Progress{Seq: rows[2].Seq}), "no next sample")
		want := func(i int) sql.NullInt64 {
			switch i {
			case 0:
				return sql.NullInt64{Int64: 46000, Valid: true}
			case 1:
				return sql.NullInt64{Int64: 31000, Valid: true}
			case 299:
				return sql.NullInt64{Int64: 1500, Valid: true} // as inserted: not named
			}
			return sql.NullInt64{Int64: int64(16000 + i), Valid: true}
		}
		prog, err := tx.OpenProgress(OpenQuery{Orgs: []string{"acme"}})
		require.NoError(t, err)
		require.Len(t, prog, 300)
		for i, p := range prog {
			require.Equal(t, rows[i].Seq, p.Seq)
			require.Equal(t, want(i), p.ActiveNext, "seq %d", p.Seq)
		}
		starts, err := tx.OpenStarts(OpenQuery{Orgs: []string{"acme"}, Names: []string{"deploy-0", "deploy-299"}})
		require.NoError(t, err)
		require.Equal(t, []sql.NullInt64{want(0), want(299)}, []sql.NullInt64{starts[0].ActiveNext, starts[1].ActiveNext})
		require.NoError(t, tx.Commit())
		listed, err := db.OpenEvents(ctx, OpenQuery{Orgs: []string{"acme"}})
		require.NoError(t, err)
		require.Len(t, listed, 300)
		for i, r := range listed {
			require.Equal(t, want(i), r.ActiveNext, "seq %d after the commit", r.Seq)
		}
	})
}

// TestStoreOpenStartsLock: while one transaction holds an open start (to
// pair a stop with it), another writer's transaction waits for it, then
// finds the start closed, so two stops never close one start.
func TestStoreOpenStartsLock(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *DB) {
		ctx := context.Background()
		db1, db2 := open(), open()
		require.NoError(t, db1.CreateOrg(ctx, "acme"))
		start := eventRow("acme", "a", "deploy", "start", 1000)
		start.Open = true
		require.NoError(t, insert(t, db1, start))

		tx1, err := db1.BeginEvents(ctx)
		require.NoError(t, err)
		rows, err := tx1.OpenStarts(OpenQuery{Orgs: []string{"acme"}, Names: []string{"deploy"}})
		require.NoError(t, err)
		require.Len(t, rows, 1)

		seen := make(chan int, 1)
		go func() {
			tx2, err := db2.BeginEvents(ctx)
			if err != nil {
				seen <- -1
				return
			}
			defer tx2.Rollback()
			rows, err := tx2.OpenStarts(OpenQuery{Orgs: []string{"acme"}, Names: []string{"deploy"}})
			if err != nil {
				seen <- -1
				return
			}
			seen <- len(rows)
		}()
		select {
		case n := <-seen:
			t.Fatalf("the second writer read the open start (%d rows) while the first held it", n)
		case <-time.After(300 * time.Millisecond):
		}
		require.NoError(t, tx1.ClosePair(start.Seq, start.Seq+100, 1))
		require.NoError(t, tx1.Commit())
		select {
		case n := <-seen:
			require.Equal(t, 0, n, "after the first committed, the start is closed")
		case <-time.After(15 * time.Second):
			t.Fatal("the second writer never got the open starts")
		}
	})
}

func TestStoreLeases(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *DB) {
		ctx := context.Background()
		db := open()
		now := time.UnixMilli(1_000_000)
		db.now = func() time.Time { return now }
		ok, err := db.AcquireLease(ctx, "org:acme", "r1", 15*time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = db.AcquireLease(ctx, "org:acme", "r2", 15*time.Second)
		require.NoError(t, err)
		require.False(t, ok, "held by r1")
		now = now.Add(10 * time.Second)
		ok, err = db.AcquireLease(ctx, "org:acme", "r1", 15*time.Second)
		require.NoError(t, err)
		require.True(t, ok, "r1 renews")
		now = now.Add(14 * time.Second)
		ok, err = db.AcquireLease(ctx, "org:acme", "r2", 15*time.Second)
		require.NoError(t, err)
		require.False(t, ok, "renewed 14 s ago: not expired")
		now = now.Add(2 * time.Second)
		ok, err = db.AcquireLease(ctx, "org:acme", "r2", 15*time.Second)
		require.NoError(t, err)
		require.True(t, ok, "expired: r2 takes it")
		holder, until, err := db.LeaseHolder(ctx, "org:acme")
		require.NoError(t, err)
		require.Equal(t, "r2", holder)
		require.Equal(t, now.Add(15*time.Second).UnixMilli(), until.UnixMilli())
		require.NoError(t, db.ReleaseLease(ctx, "org:acme", "r1"), "releasing another's lease does nothing")
		holder, _, _ = db.LeaseHolder(ctx, "org:acme")
		require.Equal(t, "r2", holder)
		require.NoError(t, db.ReleaseLease(ctx, "org:acme", "r2"))
		_, _, err = db.LeaseHolder(ctx, "org:acme")
		require.ErrorIs(t, err, ErrNotFound)
		ok, err = db.AcquireLease(ctx, "org:acme", "r1", 15*time.Second)
		require.NoError(t, err)
		require.True(t, ok, "released: taken at once")
	})
}

// TestStoreMigrateTogether: replicas starting together on an empty
// database migrate it once.
func TestStoreMigrateTogether(t *testing.T) {
	url := testservices.Postgres(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := OpenURL(context.Background(), url, "")
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	db, err := OpenURL(context.Background(), url, "")
	require.NoError(t, err)
	defer db.Close()
	var versions int
	require.NoError(t, db.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&versions))
	require.Equal(t, len(migrations), versions)
	_, err = OpenURL(context.Background(), "mysql://x", "")
	require.ErrorContains(t, err, `state URL "mysql://x" is not accepted`)
	_, err = OpenURL(context.Background(), fmt.Sprintf("postgres://nobody:secret@127.0.0.1:%d/none?connect_timeout=2", 1), "")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret", "the password is not in errors")
}

// TestMigrateDedupSeparator: dedup keys written with NUL separators by an
// earlier version are rewritten with U+001F, which the writer uses now.
func TestMigrateDedupSeparator(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, db.CreateOrg(ctx, "acme"))
	row := eventRow("acme", "a", "deploy", "start", 1000)
	row.DedupKey = "ev:deploy\x00start\x001000\x00{}"
	require.NoError(t, insert(t, db, row))
	defer db.Close()
	// The repair, as its migration runs it.
	mtx, err := db.db.BeginTx(ctx)
	require.NoError(t, err)
	require.NoError(t, replaceDedupNUL(ctx, mtx))
	require.NoError(t, mtx.Commit())
	tx, err := db.BeginEvents(ctx)
	require.NoError(t, err)
	defer tx.Rollback()
	found, err := tx.FindDedups("acme", []string{"ev:deploy\x1fstart\x1f1000\x1f{}"})
	require.NoError(t, err)
	require.Len(t, found, 1)
}

func TestStoreTokenLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *DB) {
		ctx := context.Background()
		db := open()
		require.NoError(t, db.CreateOrg(ctx, "acme"))
		require.NoError(t, db.CreateOrg(ctx, "globex"))
		tok := NewToken()
		require.NoError(t, db.AddToken(ctx, "acme", ScopeRead, "grafana", SourceCLI, tok))
		err := db.AddToken(ctx, "acme", ScopeWrite, "grafana", SourceCLI, NewToken())
		require.ErrorIs(t, err, ErrExists)
		require.ErrorContains(t, err, `organization "acme" has a token named "grafana"`)
		require.NoError(t, db.AddToken(ctx, "globex", ScopeWrite, "grafana", SourceCLI, NewToken()), "names are unique per organization only")
		require.ErrorContains(t, db.AddToken(ctx, "acme", ScopeRead, "a/b", SourceCLI, NewToken()), "not accepted")
		require.NoError(t, db.SyncConfig(ctx, nil, []ConfigToken{{Org: "acme", Name: "prometheus", Scope: ScopeWrite, Value: NewToken()}}))

		list, err := db.ListTokens(ctx, "acme")
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "grafana", list[0].Name)
		require.Equal(t, ScopeRead, list[0].Scope)
		require.Equal(t, SourceCLI, list[0].Source)
		require.WithinDuration(t, time.Now(), list[0].CreatedAt, time.Minute)
		require.Equal(t, "prometheus", list[1].Name)
		_, err = db.ListTokens(ctx, "nope")
		require.ErrorIs(t, err, ErrNotFound)

		require.ErrorIs(t, db.RevokeToken(ctx, "acme", "prometheus"), ErrConfigToken)
		require.ErrorIs(t, db.RevokeToken(ctx, "acme", "nope"), ErrNotFound)
		require.NoError(t, db.RevokeToken(ctx, "acme", "grafana"))
		_, err = db.LookupTokenHash(ctx, HashToken(tok))
		require.ErrorIs(t, err, ErrNotFound)
		require.ErrorIs(t, db.RevokeToken(ctx, "acme", "grafana"), ErrNotFound)
		// The name is free again.
		require.NoError(t, db.AddToken(ctx, "acme", ScopeRead, "grafana", SourceCLI, NewToken()))

		// A config token may not take a name another source has.
		err = db.SyncConfig(ctx, nil, []ConfigToken{{Org: "acme", Name: "grafana", Scope: ScopeRead, Value: NewToken()}})
		require.ErrorContains(t, err, "token names are unique per organization")
		err = db.SyncConfig(ctx, nil, []ConfigToken{{Org: "acme", Name: "x", Scope: ScopeRead, Value: NewToken()}, {Org: "acme", Name: "x", Scope: ScopeRead, Value: NewToken()}})
		require.ErrorContains(t, err, "declares two tokens named")
	})
}

// TestMigrationRenamesDuplicateTokenNames: a database from before token
// names were unique keeps one token of each name; the others are renamed
// deterministically, a config token keeping its name first.
func TestMigrationRenamesDuplicateTokenNames(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *DB) {
		ctx := context.Background()
		db := open()
		// Back to the schema before the unique index, with duplicates.
		_, err := db.db.ExecContext(ctx, `DROP INDEX tokens_org_name`)
		require.NoError(t, err)
		require.NoError(t, db.CreateOrg(ctx, "acme"))
		require.NoError(t, db.CreateOrg(ctx, "globex"))
		for _, r := range []struct {
			hash, org, name, source string
			created                 int64
		}{
			{"aaaaaaaaaaaaaaaa", "acme", "cli", SourceCLI, 100},
			{"bbbbbbbbbbbbbbbb", "acme", "cli", SourceCLI, 200},
			{"0ccccccccccccccc", "acme", "cli", SourceCLI, 200},
			{"dddddddddddddddd", "acme", "grafana", SourceCLI, 100},
			{"eeeeeeeeeeeeeeee", "acme", "grafana", SourceConfig, 300},
			{"ffffffffffffffff", "globex", "cli", SourceCLI, 500},
		} {
			_, err := db.db.ExecContext(ctx, `INSERT INTO tokens (hash, org, scope, name, source, created_at) VALUES (?, ?, 'read', ?, ?, ?)`, r.hash, r.org, r.name, r.source, r.created)
			require.NoError(t, err)
		}
		runMigration(t, db, "tokens_org_name")
		names := map[string]string{}
		rows, err := db.db.QueryContext(ctx, `SELECT hash, name FROM tokens`)
		require.NoError(t, err)
		for rows.Next() {
			var h, n string
			require.NoError(t, rows.Scan(&h, &n))
			names[h] = n
		}
		require.NoError(t, rows.Err())
		rows.Close()
		require.Equal(t, map[string]string{
			"aaaaaaaaaaaaaaaa": "cli",
			"0ccccccccccccccc": "cli-0ccccccccccc",
			"bbbbbbbbbbbbbbbb": "cli-bbbbbbbbbbbb",
			"dddddddddddddddd": "grafana-dddddddddddd",
			"eeeeeeeeeeeeeeee": "grafana",
			"ffffffffffffffff": "cli",
		}, names)
		_, err = db.db.ExecContext(ctx, `INSERT INTO tokens (hash, org, scope, name, source, created_at) VALUES ('x', 'acme', 'read', 'cli', 'cli', 1)`)
		require.True(t, db.db.d.isUnique(err), "%v", err)
	})
}

// runMigration runs again, in a transaction, the migration whose SQL
// contains marker, as migrate does.
func runMigration(t *testing.T, db *DB, marker string) {
	t.Helper()
	ctx := context.Background()
	for _, m := range migrations {
		if !strings.Contains(m.sql, marker) {
			continue
		}
		tx, err := db.db.BeginTx(ctx)
		require.NoError(t, err)
		for _, stmt := range strings.Split(m.sql, ";") {
			if stmt = strings.TrimSpace(stmt); stmt != "" {
				_, err := tx.ExecContext(ctx, stmt)
				require.NoError(t, err)
			}
		}
		require.NoError(t, tx.Commit())
		return
	}
	t.Fatalf("no migration contains %q", marker)
}

// TestStoreEventLookupsBySize: the writer's look-ups and inserts are cut
// into a few prepared shapes (pieceSizes); every length, across their
// boundaries, finds and stores exactly its rows.
func TestStoreEventLookupsBySize(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *DB) {
		ctx := context.Background()
		db := open()
		require.NoError(t, db.CreateOrg(ctx, "acme"))
		stored := 0
		for _, n := range []int{1, 3, 4, 5, 17, 64, 65, 300, 513} {
			rows := make([]*EventRow, n)
			keys := make([]string, 0, 2*n)
			for i := range rows {
				rows[i] = eventRow("acme", fmt.Sprintf("n%d-%d", n, i), fmt.Sprintf("deploy-%d-%d", n, i), "start", int64(1000+i))
				rows[i].Open = true
				keys = append(keys, rows[i].DedupKey, "missing-"+rows[i].DedupKey)
			}
			require.NoError(t, insert(t, db, rows...))
			stored += n

			tx, err := db.BeginEvents(ctx)
			require.NoError(t, err)
			found, err := tx.FindDedups("acme", keys)
			require.NoError(t, err)
			require.Len(t, found, n, "%d rows, %d keys", n, len(keys))
			for _, r := range rows {
				require.Equal(t, r.Seq, found[r.DedupKey].Seq)
			}
			var names []string
			for _, r := range rows {
				names = append(names, r.Name, r.Name+"-none")
			}
			open, err := tx.OpenStarts(OpenQuery{Orgs: []string{"acme"}, Names: names})
			require.NoError(t, err)
			require.Len(t, open, n)
			for i, r := range open {
				require.Equal(t, rows[i].Seq, r.Seq, "in seq order")
			}
			require.NoError(t, tx.Rollback())
		}
		got, err := db.ListEvents(ctx, EventQuery{Org: "acme", Start: 0, End: 1e6, Limit: 10000})
		require.NoError(t, err)
		require.Len(t, got, stored)
	})
}

// TestStoreInsertOrder: writers that insert the same new events in
// opposite orders at once do not deadlock: rows are inserted in the order
// of their dedup keys, so one waits for the other and is then refused the
// duplicates (ErrDuplicate), as a writer that planned again expects.
func TestStoreInsertOrder(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *DB) {
		ctx := context.Background()
		db1, db2 := open(), open()
		require.NoError(t, db1.CreateOrg(ctx, "acme"))
		for round := range 20 {
			var rows []*EventRow
			for i := range 8 {
				rows = append(rows, eventRow("acme", fmt.Sprintf("r%d-%d", round, i), fmt.Sprintf("deploy-%d-%d", round, i), "start", 1000))
			}
			reversed := make([]*EventRow, len(rows))
			for i, r := range rows {
				c := *r
				reversed[len(rows)-1-i] = &c
			}
			errs := make(chan error, 2)
			for _, w := range []struct {
				db   *DB
				rows []*EventRow
			}{{db1, rows}, {db2, reversed}} {
				go func() { errs <- insertErr(ctx, w.db, w.rows) }()
			}
			var stored, refused int
			for range 2 {
				err := <-errs
				switch {
				case err == nil:
					stored++
				case errors.Is(err, ErrDuplicate):
					refused++
				default:
					t.Fatalf("round %d: %v (a conflict: %v)", round, err, IsConflict(err))
				}
			}
			require.Equal(t, [2]int{1, 1}, [2]int{stored, refused}, "round %d", round)
		}
	})
}

// TestStoreIsConflict: PostgreSQL's answer to two writers that wait for
// each other's rows is an error IsConflict knows (the writer plans again).
func TestStoreIsConflict(t *testing.T) {
	ctx := context.Background()
	db, err := OpenURL(ctx, testservices.Postgres(t), "")
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.CreateOrg(ctx, "acme"))
	a, b := eventRow("acme", "a", "deploy-a", "start", 1000), eventRow("acme", "b", "deploy-b", "start", 1000)
	require.NoError(t, insert(t, db, a, b))
	tx1, err := db.BeginEvents(ctx)
	require.NoError(t, err)
	defer tx1.Rollback()
	tx2, err := db.BeginEvents(ctx)
	require.NoError(t, err)
	defer tx2.Rollback()
	require.NoError(t, tx1.ClosePair(a.Seq, 100, 1))
	require.NoError(t, tx2.ClosePair(b.Seq, 101, 1))
	second := make(chan error, 1)
	go func() { second <- tx1.ClosePair(b.Seq, 102, 1) }() // waits for tx2
	time.Sleep(100 * time.Millisecond)
	first := tx2.ClosePair(a.Seq, 103, 1) // waits for tx1: a deadlock
	var errs []error
	if first != nil {
		errs = append(errs, first)
		tx2.Rollback()
	}
	if err := <-second; err != nil {
		errs = append(errs, err)
	}
	require.Len(t, errs, 1, "one of the two is ended")
	require.True(t, IsConflict(errs[0]), "%v", errs[0])
	require.False(t, IsConflict(ErrDuplicate))
}
