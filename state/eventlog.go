package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// EventRow is one change event in the event log.
type EventRow struct {
	Seq      int64
	Org      string
	ID       string
	DedupKey string
	Name     string
	State    string
	// TS is the event time in milliseconds since the epoch.
	TS    int64
	Value float64
	// Labels is a JSON object of the event's labels.
	Labels string
	// PairKey identifies the series a start and its stop share.
	PairKey  string
	Body     string
	Metadata string
	Links    string
	// ReceivedAt is when the event was received, in milliseconds.
	ReceivedAt int64
	// PairSeq is the seq of the paired stop (for a start) or start (for a stop).
	PairSeq sql.NullInt64
	// DurationMS is the start-to-stop duration, once paired.
	DurationMS sql.NullInt64
	// Open is true for a start that has no stop yet.
	Open bool
	// Committed is true once the event's samples are in the TSDB.
	Committed bool
}

const eventColumns = `seq, org, id, dedup_key, name, state, ts, value, labels, pair_key, body, metadata, links, received_at, pair_seq, duration_ms, open, committed`

func scanEvent(sc interface{ Scan(...any) error }) (EventRow, error) {
	var r EventRow
	var open, committed int
	err := sc.Scan(&r.Seq, &r.Org, &r.ID, &r.DedupKey, &r.Name, &r.State, &r.TS, &r.Value, &r.Labels, &r.PairKey,
		&r.Body, &r.Metadata, &r.Links, &r.ReceivedAt, &r.PairSeq, &r.DurationMS, &open, &committed)
	r.Open, r.Committed = open == 1, committed == 1
	return r, err
}

func queryEvents(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]EventRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM change_events `+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []EventRow
	for rows.Next() {
		r, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// EventTx is a write transaction on the event log. It is used by one
// goroutine at a time.
type EventTx struct {
	ctx context.Context
	tx  *sql.Tx
}

// BeginEvents starts a write transaction on the event log.
func (s *DB) BeginEvents(ctx context.Context) (*EventTx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin event log transaction: %w", err)
	}
	return &EventTx{ctx: ctx, tx: tx}, nil
}

// FindDedups returns the events stored under any of an organization's dedup
// keys, by key.
func (t *EventTx) FindDedups(org string, keys []string) (map[string]EventRow, error) {
	out := make(map[string]EventRow)
	const chunk = 500
	for i := 0; i < len(keys); i += chunk {
		part := keys[i:min(i+chunk, len(keys))]
		args := make([]any, 0, len(part)+1)
		args = append(args, org)
		for _, k := range part {
			args = append(args, k)
		}
		rows, err := queryEvents(t.ctx, t.tx, `WHERE org = ? AND dedup_key IN (?`+strings.Repeat(`, ?`, len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("look up duplicate events: %w", err)
		}
		for _, r := range rows {
			out[r.DedupKey] = r
		}
	}
	return out, nil
}

// InsertMany adds event rows, several per statement.
func (t *EventTx) InsertMany(rs []*EventRow) error {
	const perStatement = 50 // 18 columns: 900 parameters, under SQLite's and PostgreSQL's limits.
	tuple := `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	for i := 0; i < len(rs); i += perStatement {
		part := rs[i:min(i+perStatement, len(rs))]
		args := make([]any, 0, 18*len(part))
		for _, r := range part {
			args = append(args, r.Seq, r.Org, r.ID, r.DedupKey, r.Name, r.State, r.TS, r.Value, r.Labels, r.PairKey,
				r.Body, r.Metadata, r.Links, r.ReceivedAt, r.PairSeq, r.DurationMS, boolInt(r.Open), boolInt(r.Committed))
		}
		q := `INSERT INTO change_events (` + eventColumns + `) VALUES ` + tuple + strings.Repeat(`, `+tuple, len(part)-1)
		if _, err := t.tx.ExecContext(t.ctx, q, args...); err != nil {
			return fmt.Errorf("insert %d change events: %w", len(part), err)
		}
	}
	return nil
}

// ClosePair records that the start startSeq was stopped by stopSeq.
func (t *EventTx) ClosePair(startSeq, stopSeq, durationMS int64) error {
	_, err := t.tx.ExecContext(t.ctx, `UPDATE change_events SET open = 0, pair_seq = ?, duration_ms = ? WHERE seq = ?`, stopSeq, durationMS, startSeq)
	return err
}

// Commit commits the transaction.
func (t *EventTx) Commit() error { return t.tx.Commit() }

// Rollback aborts the transaction.
func (t *EventTx) Rollback() error { return t.tx.Rollback() }

// MarkCommitted records that the samples of the events seqs are in the TSDB.
func (s *DB) MarkCommitted(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Seqs mostly come as one contiguous run: update runs, not rows.
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if _, err := tx.ExecContext(ctx, `UPDATE change_events SET committed = 1 WHERE seq BETWEEN ? AND ?`, seqs[i], seqs[j]); err != nil {
			return err
		}
		i = j + 1
	}
	return tx.Commit()
}

// ExpireOpen closes a start that ran past the maximum duration without a stop.
func (s *DB) ExpireOpen(ctx context.Context, seq int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE change_events SET open = 0 WHERE seq = ?`, seq)
	return err
}

// UncommittedEvents returns, in seq order, the events whose samples may be
// missing from the TSDB (after a crash between the two writes).
func (s *DB) UncommittedEvents(ctx context.Context) ([]EventRow, error) {
	return queryEvents(ctx, s.db, `WHERE committed = 0 ORDER BY seq`)
}

// OpenEvents returns the starts that have no stop yet, in seq order.
func (s *DB) OpenEvents(ctx context.Context) ([]EventRow, error) {
	return queryEvents(ctx, s.db, `WHERE open = 1 ORDER BY seq`)
}

// MaxEventSeq returns the highest seq in the log, or 0.
func (s *DB) MaxEventSeq(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(seq) FROM change_events`).Scan(&n)
	return n.Int64, err
}

// EventQuery selects committed events of one organization, newest first.
type EventQuery struct {
	Org string
	// Start and End bound the event time, in milliseconds, inclusive.
	Start, End int64
	// Name, if set, selects one event name.
	Name string
	// Before, if set, continues a listing after the event (TS, Seq).
	Before *EventCursor
	Limit  int
}

// EventCursor is a position in a newest-first listing.
type EventCursor struct {
	TS  int64
	Seq int64
}

// ListEvents returns committed events matching q, newest first.
func (s *DB) ListEvents(ctx context.Context, q EventQuery) ([]EventRow, error) {
	var where []string
	args := []any{q.Org, q.Start, q.End}
	where = append(where, `org = ?`, `ts >= ?`, `ts <= ?`, `committed = 1`)
	if q.Name != "" {
		where = append(where, `name = ?`)
		args = append(args, q.Name)
	}
	if q.Before != nil {
		where = append(where, `(ts < ? OR (ts = ? AND seq < ?))`)
		args = append(args, q.Before.TS, q.Before.TS, q.Before.Seq)
	}
	args = append(args, q.Limit)
	return queryEvents(ctx, s.db, `WHERE `+strings.Join(where, ` AND `)+` ORDER BY ts DESC, seq DESC LIMIT ?`, args...)
}

// EventBySeq returns one event.
func (s *DB) EventBySeq(ctx context.Context, seq int64) (EventRow, error) {
	r, err := scanEvent(s.db.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM change_events WHERE seq = ?`, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// ExpireOpen closes, in the transaction, a start that ran past the maximum
// duration without a stop.
func (t *EventTx) ExpireOpen(seq int64) error {
	_, err := t.tx.ExecContext(t.ctx, `UPDATE change_events SET open = 0 WHERE seq = ?`, seq)
	return err
}
