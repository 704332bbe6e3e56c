// Package state keeps Tidemark's state that is not series: organizations,
// hashed tokens and the change-event log.
//
// It uses SQLite (through the pure-Go modernc.org/sqlite driver) by default.
// The SQL is kept to the subset that PostgreSQL accepts too: TEXT, BIGINT
// and DOUBLE PRECISION columns, ON CONFLICT, partial indexes, application-
// assigned keys instead of AUTOINCREMENT, no SQLite-only functions. Only the
// `?` placeholders would need rebinding to `$n` for a PostgreSQL driver.
package state

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // The "sqlite" database/sql driver.
)

// DB is the state database. It is safe for concurrent use.
type DB struct {
	db  *sql.DB
	now func() time.Time
}

// Open opens (creating if needed) the state database at path and applies
// pending migrations.
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
	s := &DB{db: db, now: time.Now}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate state database %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// migrations are applied in order, each once, each in its own transaction.
// Append only: never edit a migration that has been released.
var migrations = []string{
	`CREATE TABLE organizations (
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
	CREATE INDEX tokens_org ON tokens (org);`,

	// change_events is the event log. seq is assigned by the single event
	// writer; committed is 0 until the event's samples are in the TSDB.
	`CREATE TABLE change_events (
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
	CREATE INDEX change_events_uncommitted ON change_events (committed) WHERE committed = 0;`,

	// rule_groups holds the rule groups of the ruler API: one Prometheus
	// rule group per row, as YAML, by organization, namespace and name.
	`CREATE TABLE rule_groups (
		org        TEXT NOT NULL REFERENCES organizations(slug),
		namespace  TEXT NOT NULL,
		name       TEXT NOT NULL,
		body       TEXT NOT NULL,
		updated_at BIGINT NOT NULL,
		PRIMARY KEY (org, namespace, name)
	);`,
}

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	var have int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&have); err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("database has schema version %d, newer than this binary's %d", have, len(migrations))
	}
	for v := have; v < len(migrations); v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v+1, s.now().UnixMilli()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}
