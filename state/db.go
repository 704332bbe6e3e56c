// Package state keeps Tidemark's state that is not series: organizations,
// hashed tokens, rule groups and the change-event log. The contracts are in
// interface.go; *DB implements them on SQLite (the default: one file beside
// the data, through the pure-Go modernc.org/sqlite driver) or PostgreSQL
// (several replicas sharing one database, through github.com/jackc/pgx/v5).
//
// Both run the same SQL and the same migrations: TEXT, BIGINT, INTEGER and
// DOUBLE PRECISION columns, ON CONFLICT, RETURNING, partial indexes, keys
// assigned from a counter table instead of AUTOINCREMENT or SERIAL, no
// database-specific functions; `?` placeholders are rebound to `$n` for
// PostgreSQL (dialect.go).
package state

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // The "sqlite" database/sql driver.
)

// DB is the state database. It is safe for concurrent use, and several
// processes may share one PostgreSQL database.
type DB struct {
	db  handle
	now func() time.Time
}

// OpenURL opens the state database a --state.url names: empty is SQLite at
// sqlitePath, postgres:// or postgresql:// is PostgreSQL.
func OpenURL(ctx context.Context, stateURL, sqlitePath string) (*DB, error) {
	switch {
	case stateURL == "":
		return Open(sqlitePath)
	case strings.HasPrefix(stateURL, "postgres://"), strings.HasPrefix(stateURL, "postgresql://"):
		return OpenPostgres(ctx, stateURL)
	}
	return nil, fmt.Errorf("state URL %q is not accepted: use postgres://user@host:5432/db, or nothing for SQLite in the data directory", redactURL(stateURL))
}

// Open opens (creating if needed) the SQLite state database at path and
// applies pending migrations.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: a commit is on disk before it returns, so an acknowledged
	// event survives a power loss, not only a process crash.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	return open(context.Background(), db, sqliteDialect, path)
}

// OpenPostgres connects to the PostgreSQL database at dsn and applies
// pending migrations, one process at a time.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("state database %s: %w", redactURL(dsn), err)
	}
	// Plan every statement with its parameters: a generic plan of a long
	// IN list (dedup look-ups) scans the whole table.
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to state database %s: %w", redactURL(dsn), err)
	}
	return open(ctx, db, postgresDialect, redactURL(dsn))
}

func open(ctx context.Context, db *sql.DB, d *dialect, name string) (*DB, error) {
	s := &DB{db: handle{db: db, d: d, stmts: &stmtCache{}}, now: time.Now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate state database %s: %w", name, err)
	}
	return s, nil
}

// redactURL hides the password of a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Dialect names the database behind the state: "sqlite" or "postgres".
func (s *DB) Dialect() string { return s.db.d.name }

// Close closes the database.
func (s *DB) Close() error { return s.db.db.Close() }

// migration is one step of the schema.
type migration struct {
	// sql runs on SQLite and PostgreSQL alike.
	sql string
	// sqliteOnly repairs data that only SQLite can hold (PostgreSQL
	// refuses it on write): it runs on SQLite only, after sql.
	sqliteOnly func(ctx context.Context, tx txHandle) error
}

// migrations are applied in order, each once, under the migration lock.
// Append only: never edit a migration that has been released.
var migrations = []migration{
	{sql: `CREATE TABLE organizations (
		slug       TEXT PRIMARY KEY,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE tokens (
		hash       TEXT PRIMARY KEY,
		org        TEXT NOT NULL REFERENCES organizations(slug),
		scope      TEXT NOT NULL,
		name       TEXT NOT NULL,
		source     TEXT NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE INDEX tokens_org ON tokens (org);`},

	// change_events is the event log. committed is 0 until the event's
	// samples are in the series storage.
	{sql: `CREATE TABLE change_events (
		seq          BIGINT PRIMARY KEY,
		org          TEXT NOT NULL REFERENCES organizations(slug),
		id           TEXT NOT NULL,
		dedup_key    TEXT NOT NULL,
		name         TEXT NOT NULL,
		state        TEXT NOT NULL,
		ts           BIGINT NOT NULL,
		value        DOUBLE PRECISION NOT NULL,
		labels       TEXT NOT NULL,
		pair_key     TEXT NOT NULL,
		body         TEXT NOT NULL,
		metadata     TEXT NOT NULL,
		links        TEXT NOT NULL,
		received_at  BIGINT NOT NULL,
		pair_seq     BIGINT,
		duration_ms  BIGINT,
		open         INTEGER NOT NULL DEFAULT 0,
		committed    INTEGER NOT NULL DEFAULT 0
	);
	CREATE UNIQUE INDEX change_events_id ON change_events (org, id);
	CREATE UNIQUE INDEX change_events_dedup ON change_events (org, dedup_key);
	CREATE INDEX change_events_ts ON change_events (org, ts, seq);
	CREATE INDEX change_events_name_ts ON change_events (org, name, ts, seq);
	CREATE INDEX change_events_open ON change_events (open) WHERE open = 1;
	CREATE INDEX change_events_uncommitted ON change_events (committed) WHERE committed = 0;`},

	// rule_groups holds the rule groups of the ruler API: one Prometheus
	// rule group per row, as YAML, by organization, namespace and name.
	{sql: `CREATE TABLE rule_groups (
		org        TEXT NOT NULL REFERENCES organizations(slug),
		namespace  TEXT NOT NULL,
		name       TEXT NOT NULL,
		body       TEXT NOT NULL,
		updated_at BIGINT NOT NULL,
		PRIMARY KEY (org, namespace, name)
	);`},

	// sequences numbers rows from the database: change_events.seq comes
	// from its row "change_events" (EventTx.AllocSeqs), continuing after the
	// seqs a single writer assigned before.
	{sql: `CREATE TABLE sequences (
		name  TEXT PRIMARY KEY,
		value BIGINT NOT NULL
	);
	INSERT INTO sequences (name, value) SELECT 'change_events', COALESCE(MAX(seq), 0) FROM change_events;`},

	// The open set lives in the log, so that any writer can pair a stop
	// with a start another wrote: active_next is how far an open start's
	// change_event_active series is written; at most one start per series
	// is open (the database refuses a second); open starts are found by
	// name. leases give once-per-organization work to one process.
	{sql: `ALTER TABLE change_events ADD COLUMN active_next BIGINT;
	UPDATE change_events SET open = 0 WHERE open = 1 AND EXISTS (
		SELECT 1 FROM change_events e2 WHERE e2.org = change_events.org AND e2.pair_key = change_events.pair_key AND e2.open = 1 AND e2.seq < change_events.seq);
	CREATE UNIQUE INDEX change_events_one_open ON change_events (org, pair_key) WHERE open = 1;
	CREATE INDEX change_events_open_name ON change_events (org, name) WHERE open = 1;
	CREATE TABLE leases (
		name       TEXT PRIMARY KEY,
		holder     TEXT NOT NULL,
		expires_at BIGINT NOT NULL
	);`},

	// Dedup keys of events without an id separated their fields with NUL,
	// which PostgreSQL's text cannot hold; they now use U+001F. (SQLite's
	// replace() cannot match a NUL, hence Go.)
	{sqliteOnly: replaceDedupNUL},

	// Token names are unique per organization, so that a token can be
	// listed and revoked by name. Tokens that share a name (the CLI named
	// every token "cli") keep it once: the first by config source, then
	// creation time, then hash; every other is renamed <name>-<the first 12
	// characters of its hash>.
	{sql: `UPDATE tokens SET name = name || '-' || SUBSTR(hash, 1, 12) WHERE EXISTS (
		SELECT 1 FROM tokens t2 WHERE t2.org = tokens.org AND t2.name = tokens.name AND t2.hash <> tokens.hash AND (
			(t2.source = 'config' AND tokens.source <> 'config')
			OR ((t2.source = 'config') = (tokens.source = 'config') AND (t2.created_at < tokens.created_at OR (t2.created_at = tokens.created_at AND t2.hash < tokens.hash)))));
	CREATE UNIQUE INDEX tokens_org_name ON tokens (org, name);`},

	// change_event_impact holds what a start did to its signals (package
	// impact), in a table of its own rather than a column of
	// change_events: the event log stays append-mostly (an UPDATE in
	// PostgreSQL rewrites the whole row, body and metadata included), its
	// writer's statements stay as they are, "scored once" is an insert
	// that the primary key lets only one process make, and the starts
	// still to score are those without a row.
	{sql: `CREATE TABLE change_event_impact (
		seq       BIGINT PRIMARY KEY REFERENCES change_events(seq),
		org       TEXT NOT NULL,
		verdict   TEXT NOT NULL,
		scored_at BIGINT NOT NULL,
		body      TEXT NOT NULL
	);`},

	// A row is listed from its transaction's commit on, whether or not it
	// is marked committed yet (the mark may come with the writer's next
	// transaction), except when writing its samples failed and its request
	// was answered 503: hidden keeps it out of listings until a replay
	// writes them.
	{sql: `ALTER TABLE change_events ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;`},

	// The impact service pages through an organization's starts in seq
	// order. Without this index SQLite reads them by (org, ts) and sorts
	// every start of the organization for each page of 500 (seq is not
	// the rowid there), so a pass over n pending starts cost n²/500 row
	// reads: 55,000 pending starts took a core's third continuously.
	{sql: `CREATE INDEX change_events_starts ON change_events (org, seq) WHERE state = 'start';`},

	// How far an open start's active series is written, once a tick moved
	// it (change_events.active_next keeps the value it was inserted with):
	// a tick moves every open start, and an update of change_events
	// rewrote each of those wide rows, so 20,000 open starts cost a tick
	// 130 ms of updates in SQLite and 20,000 dead row versions, bodies
	// included, in PostgreSQL. No foreign key: rows are written only for
	// seqs the same transaction read, and one more look-up per row is what
	// this table saves.
	{sql: `CREATE TABLE change_event_progress (
		seq         BIGINT PRIMARY KEY,
		active_next BIGINT NOT NULL
	);`},
}

// migrate applies pending migrations in one transaction that holds the
// migration lock, so replicas that start together migrate once.
func (s *DB) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.db.d.lock(ctx, tx.tx, migrationLockKey); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&have); err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("database has schema version %d, newer than this binary's %d", have, len(migrations))
	}
	for v := have; v < len(migrations); v++ {
		for _, stmt := range strings.Split(migrations[v].sql, ";") {
			if stmt = strings.TrimSpace(stmt); stmt == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		if f := migrations[v].sqliteOnly; f != nil && s.db.d == sqliteDialect {
			if err := f(ctx, tx); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v+1, s.now().UnixMilli()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// replaceDedupNUL rewrites the NUL separators of dedup keys as U+001F.
func replaceDedupNUL(ctx context.Context, tx txHandle) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, dedup_key FROM change_events WHERE dedup_key LIKE 'ev:%'`)
	if err != nil {
		return err
	}
	fix := map[int64]string{}
	for rows.Next() {
		var seq int64
		var key string
		if err := rows.Scan(&seq, &key); err != nil {
			rows.Close()
			return err
		}
		if strings.ContainsRune(key, 0) {
			fix[seq] = strings.ReplaceAll(key, "\x00", "\x1f")
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for seq, key := range fix {
		if _, err := tx.ExecContext(ctx, `UPDATE change_events SET dedup_key = ? WHERE seq = ?`, key, seq); err != nil {
			return err
		}
	}
	return nil
}
