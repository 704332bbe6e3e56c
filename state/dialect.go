package state

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between SQLite and PostgreSQL. The SQL itself is
// one text for both: written with `?` placeholders, rebound for PostgreSQL.
type dialect struct {
	name string
	// numbered: placeholders are $1, $2, ... instead of ?.
	numbered bool
	// forUpdate ends a SELECT whose rows the transaction locks.
	forUpdate string
	// seqsOutsideTx: EventTx.AllocSeqs takes seqs in a transaction of its
	// own (see there).
	seqsOutsideTx bool
	// isUnique reports whether err is a violation of a unique constraint.
	isUnique func(error) bool
	// lock takes, in tx, the lock key that lets one process at a time do
	// what it guards (migrate, sync the config); it is released when tx
	// ends.
	lock func(ctx context.Context, tx *sql.Tx, key int64) error
}

// The keys of lock.
const (
	migrationLockKey = 7_461_636_973 // "tide" in ASCII, as a number
	configLockKey    = migrationLockKey + 1
)

var sqliteDialect = &dialect{
	name: "sqlite",
	isUnique: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	// Transactions begin IMMEDIATE (see Open): the write lock is held
	// from the start.
	lock: func(context.Context, *sql.Tx, int64) error { return nil },
}

var postgresDialect = &dialect{
	name:          "postgres",
	numbered:      true,
	forUpdate:     " FOR UPDATE",
	seqsOutsideTx: true,
	isUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505" // unique_violation
	},
	lock: func(ctx context.Context, tx *sql.Tx, key int64) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key)
		return err
	},
}

// IsConflict reports whether err is PostgreSQL ending a transaction to
// resolve a conflict with another one (deadlock_detected,
// serialization_failure): the work may be done again from the start. Two
// writers that insert the same events in different orders wait for each
// other's unique keys; the database lets one of them through.
func IsConflict(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == "40P01" || e.Code == "40001")
}

// rebind turns ? placeholders into $n where the dialect numbers them. The
// SQL of this package has no ? inside string literals.
func (d *dialect) rebind(q string) string {
	if !d.numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// handle runs statements on the database, rebinding them for its dialect.
type handle struct {
	db    *sql.DB
	d     *dialect
	stmts *stmtCache
}

// stmtCache holds prepared statements by their rebound text. The event
// writer runs a few statement shapes (see pieces) thousands of times a
// second; unprepared, SQLite parses each again every time.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// prepared is the statement q, prepared once on db.
func (c *stmtCache) prepared(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[q]; st != nil {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st, nil
}

// pieceSizes are the lengths the event writer cuts its variable-length
// statements (IN lists, multi-row inserts) into, longest first, so that a
// few prepared statements serve groups of any size.
var pieceSizes = []int{256, 64, 16, 4, 1}

// pieces cuts n items into lengths of pieceSizes, longest first.
func pieces(n int) []int {
	var out []int
	for _, size := range pieceSizes {
		for ; n >= size; n -= size {
			out = append(out, size)
		}
	}
	return out
}

// padded cuts keys into IN lists of pieceSizes: full lists of the longest,
// the rest padded, by repeating its last key, up to the shortest size that
// holds it.
func padded[T any](keys []T) [][]T {
	longest := pieceSizes[0]
	var out [][]T
	for len(keys) > longest {
		out = append(out, keys[:longest])
		keys = keys[longest:]
	}
	if len(keys) == 0 {
		return out
	}
	size := longest
	for _, s := range pieceSizes {
		if s >= len(keys) {
			size = s
		}
	}
	last := slices.Clone(keys)
	for len(last) < size {
		last = append(last, keys[len(keys)-1])
	}
	return append(out, last)
}

// placeholders is n comma-separated placeholders.
func placeholders(n int) string {
	return "?" + strings.Repeat(", ?", n-1)
}

func (h handle) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return h.db.ExecContext(ctx, h.d.rebind(q), args...)
}

func (h handle) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return h.db.QueryContext(ctx, h.d.rebind(q), args...)
}

func (h handle) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return h.db.QueryRowContext(ctx, h.d.rebind(q), args...)
}

func (h handle) BeginTx(ctx context.Context) (txHandle, error) {
	tx, err := h.db.BeginTx(ctx, nil)
	return txHandle{tx: tx, h: h}, err
}

// prepared is q, rebound and prepared once.
func (h handle) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	return h.stmts.prepared(ctx, h.db, h.d.rebind(q))
}

// txHandle is a transaction of h that rebinds its statements.
type txHandle struct {
	tx *sql.Tx
	h  handle
}

// stmt is q, prepared once for the database, in this transaction.
func (t txHandle) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	st, err := t.h.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(ctx, st), nil
}

func (t txHandle) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.h.d.rebind(q), args...)
}

func (t txHandle) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.h.d.rebind(q), args...)
}

func (t txHandle) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.h.d.rebind(q), args...)
}

func (t txHandle) Commit() error   { return t.tx.Commit() }
func (t txHandle) Rollback() error { return t.tx.Rollback() }
