package state

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
	// ActiveNext is, for an open start, the time of the next sample of its
	// change_event_active series to write: the series is written up to it.
	// Null means from the start.
	ActiveNext sql.NullInt64
}

// eventColumns are the columns of change_events an EventRow is inserted
// into.
const eventColumns = `seq, org, id, dedup_key, name, state, ts, value, labels, pair_key, body, metadata, links, received_at, pair_seq, duration_ms, open, committed, active_next`

// activeNext is an open start's ActiveNext: change_event_progress's, once
// SetActive wrote one, else what the row was inserted with.
const activeNext = `COALESCE((SELECT p.active_next FROM change_event_progress p WHERE p.seq = change_events.seq), active_next)`

// selectColumns are the columns of an EventRow, in eventColumns' order.
var selectColumns = strings.TrimSuffix(eventColumns, "active_next") + activeNext

func scanEvent(sc interface{ Scan(...any) error }) (EventRow, error) {
	var r EventRow
	var open, committed int
	err := sc.Scan(&r.Seq, &r.Org, &r.ID, &r.DedupKey, &r.Name, &r.State, &r.TS, &r.Value, &r.Labels, &r.PairKey,
		&r.Body, &r.Metadata, &r.Links, &r.ReceivedAt, &r.PairSeq, &r.DurationMS, &open, &committed, &r.ActiveNext)
	r.Open, r.Committed = open == 1, committed == 1
	return r, err
}

func queryEvents(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]EventRow, error) {
	return scanEvents(q.QueryContext(ctx, `SELECT `+selectColumns+` FROM change_events `+query, args...))
}

// queryPrepared is queryEvents with a statement prepared once.
func (t *eventTx) queryPrepared(query string, args ...any) ([]EventRow, error) {
	st, err := t.tx.stmt(t.ctx, `SELECT `+selectColumns+` FROM change_events `+query)
	if err != nil {
		return nil, err
	}
	return scanEvents(st.QueryContext(t.ctx, args...))
}

// exec runs q, prepared once, in the transaction.
func (t *eventTx) exec(q string, args ...any) (sql.Result, error) {
	st, err := t.tx.stmt(t.ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

func scanEvents(rows *sql.Rows, err error) ([]EventRow, error) {
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

// eventTx is a write transaction on the event log.
type eventTx struct {
	ctx context.Context
	tx  txHandle
}

// BeginEvents implements EventLog.
func (s *DB) BeginEvents(ctx context.Context) (EventTx, error) {
	tx, err := s.db.BeginTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin event log transaction: %w", err)
	}
	return &eventTx{ctx: ctx, tx: tx}, nil
}

// FindDedups implements EventTx.
func (t *eventTx) FindDedups(org string, keys []string) (map[string]EventRow, error) {
	out := make(map[string]EventRow)
	for _, part := range padded(keys) {
		args := make([]any, 0, len(part)+1)
		args = append(args, org)
		for _, k := range part {
			args = append(args, k)
		}
		rows, err := t.queryPrepared(`WHERE org = ? AND dedup_key IN (`+placeholders(len(part))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("look up duplicate events: %w", err)
		}
		for _, r := range rows {
			out[r.DedupKey] = r
		}
	}
	return out, nil
}

// seqName is the row of the sequences table that numbers the event log.
const seqName = "change_events"

// AllocSeqs implements EventTx. On SQLite the counter row is updated in the
// transaction (there is one writer at a time anyway); on PostgreSQL in a
// transaction of its own, committed at once, so that writers in several
// processes do not wait for each other's whole transaction.
func (t *eventTx) AllocSeqs(n int) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	const q = `UPDATE sequences SET value = value + ? WHERE name = ? RETURNING value`
	var st *sql.Stmt
	var err error
	if t.tx.h.d.seqsOutsideTx {
		st, err = t.tx.h.prepared(t.ctx, q)
	} else {
		st, err = t.tx.stmt(t.ctx, q)
	}
	var last int64
	if err == nil {
		err = st.QueryRowContext(t.ctx, n, seqName).Scan(&last)
	}
	if err != nil {
		return 0, fmt.Errorf("allocate %d event seqs: %w", n, err)
	}
	return last - int64(n) + 1, nil
}

// Insert implements EventTx, several rows per statement (at most 256: 4,864
// parameters, under SQLite's 32,766 and PostgreSQL's 65,535).
func (t *eventTx) Insert(rs []*EventRow) error {
	const tuple = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// In the order of their dedup keys, so that writers that insert the
	// same events (PostgreSQL) take their unique keys in the same order
	// and wait for each other rather than deadlock; what is left of
	// deadlocks is IsConflict's.
	rs = slices.SortedFunc(slices.Values(rs), func(a, b *EventRow) int {
		return cmp.Or(cmp.Compare(a.Org, b.Org), cmp.Compare(a.DedupKey, b.DedupKey))
	})
	for _, n := range pieces(len(rs)) {
		part := rs[:n]
		rs = rs[n:]
		args := make([]any, 0, 19*len(part))
		for _, r := range part {
			args = append(args, r.Seq, r.Org, r.ID, r.DedupKey, r.Name, r.State, r.TS, r.Value, r.Labels, r.PairKey,
				r.Body, r.Metadata, r.Links, r.ReceivedAt, r.PairSeq, r.DurationMS, boolInt(r.Open), boolInt(r.Committed), r.ActiveNext)
		}
		res, err := t.exec(`INSERT INTO change_events (`+eventColumns+`) VALUES `+tuple+strings.Repeat(`, `+tuple, n-1)+` ON CONFLICT DO NOTHING`, args...)
		if err != nil {
			return fmt.Errorf("insert %d change events: %w", n, err)
		}
		if stored, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("insert %d change events: %w", n, err)
		} else if stored != int64(n) {
			return fmt.Errorf("insert %d change events: %d stored already: %w", n, int64(n)-stored, ErrDuplicate)
		}
	}
	return nil
}

// ClosePair implements EventTx.
func (t *eventTx) ClosePair(startSeq, stopSeq, durationMS int64) error {
	_, err := t.exec(`UPDATE change_events SET open = 0, pair_seq = ?, duration_ms = ? WHERE seq = ?`, stopSeq, durationMS, startSeq)
	return err
}

// Commit implements EventTx.
func (t *eventTx) Commit() error { return t.tx.Commit() }

// Rollback implements EventTx.
func (t *eventTx) Rollback() error { return t.tx.Rollback() }

// UncommittedEvents implements EventLog.
func (s *DB) UncommittedEvents(ctx context.Context, q UncommittedQuery) ([]EventRow, error) {
	where, args := orgsWhere(`committed = 0`, q.Orgs)
	if q.ReceivedBefore != 0 {
		where += ` AND received_at < ?`
		args = append(args, q.ReceivedBefore)
	}
	return queryEvents(ctx, s.db, `WHERE `+where+` ORDER BY seq`, args...)
}

// OpenCount implements EventLog.
func (s *DB) OpenCount(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM change_events WHERE open = 1`).Scan(&n)
	return n, err
}

// orgsWhere is cond restricted to the organizations orgs (nil: every one).
func orgsWhere(cond string, orgs []string) (string, []any) {
	if orgs == nil {
		return cond, nil
	}
	if len(orgs) == 0 {
		return cond + ` AND 1 = 0`, nil
	}
	args := make([]any, len(orgs))
	for i, o := range orgs {
		args[i] = o
	}
	return cond + ` AND org IN (?` + strings.Repeat(`, ?`, len(orgs)-1) + `)`, args
}

// EventQuery selects events of one organization, newest first.
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

// ListEvents returns the events matching q, newest first, but hidden ones.
func (s *DB) ListEvents(ctx context.Context, q EventQuery) ([]EventRow, error) {
	var where []string
	args := []any{q.Org, q.Start, q.End}
	where = append(where, `org = ?`, `ts >= ?`, `ts <= ?`, `hidden = 0`)
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
	r, err := scanEvent(s.db.QueryRowContext(ctx, `SELECT `+selectColumns+` FROM change_events WHERE seq = ?`, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// EventByID implements EventLog.
func (s *DB) EventByID(ctx context.Context, org, id string) (EventRow, error) {
	r, err := scanEvent(s.db.QueryRowContext(ctx, `SELECT `+selectColumns+` FROM change_events WHERE org = ? AND id = ?`, org, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// ExpireOpen implements EventTx.
func (t *eventTx) ExpireOpen(seq int64) error {
	_, err := t.exec(`UPDATE change_events SET open = 0 WHERE seq = ?`, seq)
	return err
}

// OpenEvents implements EventLog.
func (s *DB) OpenEvents(ctx context.Context, q OpenQuery) ([]EventRow, error) {
	where, args := openWhere(q)
	if where == "" {
		return nil, nil
	}
	return queryEvents(ctx, s.db, `WHERE `+where+` ORDER BY seq`, args...)
}

// openWhere is the condition of an OpenQuery; "" selects nothing.
func openWhere(q OpenQuery) (string, []any) {
	where, args := orgsWhere(`open = 1`, q.Orgs)
	if q.Names != nil {
		if len(q.Names) == 0 {
			return "", nil
		}
		where += ` AND name IN (?` + strings.Repeat(`, ?`, len(q.Names)-1) + `)`
		for _, n := range q.Names {
			args = append(args, n)
		}
	}
	if q.PairKeys != nil {
		if len(q.PairKeys) == 0 {
			return "", nil
		}
		where += ` AND pair_key IN (` + placeholders(len(q.PairKeys)) + `)`
		for _, k := range q.PairKeys {
			args = append(args, k)
		}
	}
	if q.AfterSeq != 0 {
		where += ` AND seq > ?`
		args = append(args, q.AfterSeq)
	}
	return where, args
}

// OpenStarts implements EventTx. PostgreSQL locks the rows (FOR UPDATE);
// SQLite's write transactions exclude each other already.
func (t *eventTx) OpenStarts(q OpenQuery) ([]EventRow, error) {
	if q.Names != nil && q.PairKeys != nil {
		return nil, errors.New("open starts: by name and by pair key at once is not supported")
	}
	var pieces []OpenQuery
	switch {
	case q.Names != nil:
		for _, names := range padded(q.Names) {
			pieces = append(pieces, OpenQuery{Orgs: q.Orgs, Names: names})
		}
	case q.PairKeys != nil:
		for _, keys := range padded(q.PairKeys) {
			pieces = append(pieces, OpenQuery{Orgs: q.Orgs, PairKeys: keys})
		}
	default:
		return t.openStarts(q)
	}
	var out []EventRow
	for _, piece := range pieces {
		rows, err := t.openStarts(piece)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	slices.SortFunc(out, func(a, b EventRow) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

func (t *eventTx) openStarts(q OpenQuery) ([]EventRow, error) {
	where, args := openWhere(q)
	if where == "" {
		return nil, nil
	}
	rows, err := t.queryPrepared(`WHERE `+where+` ORDER BY seq`+t.tx.h.d.forUpdate, args...)
	if err != nil {
		return nil, fmt.Errorf("read open events: %w", err)
	}
	return rows, nil
}

// OpenProgress implements EventTx, locking as OpenStarts does.
func (t *eventTx) OpenProgress(q OpenQuery) ([]Progress, error) {
	if q.Names != nil || q.PairKeys != nil {
		return nil, errors.New("open progress: by name or pair key is not supported")
	}
	where, args := openWhere(q)
	st, err := t.tx.stmt(t.ctx, `SELECT seq, `+activeNext+` FROM change_events WHERE `+where+` ORDER BY seq`+t.tx.h.d.forUpdate)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(t.ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("read open events: %w", err)
	}
	defer rows.Close()
	var out []Progress
	for rows.Next() {
		var p Progress
		if err := rows.Scan(&p.Seq, &p.ActiveNext); err != nil {
			return nil, fmt.Errorf("read open events: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// SetActive implements EventTx. It writes the narrow change_event_progress,
// not change_events: a tick moves every open start, and updating the log's
// rows rewrote each whole row (body, metadata and labels; in PostgreSQL a
// new version of it).
func (t *eventTx) SetActive(ps ...Progress) error {
	// An upsert may not name a row twice (PostgreSQL refuses it): the last
	// of a seq counts.
	bySeq := slices.Clone(ps)
	slices.SortStableFunc(bySeq, func(a, b Progress) int { return cmp.Compare(a.Seq, b.Seq) })
	var uniq []Progress
	for i, p := range bySeq {
		if !p.ActiveNext.Valid {
			return fmt.Errorf("set active: no next sample for seq %d", p.Seq)
		}
		if i+1 < len(bySeq) && bySeq[i+1].Seq == p.Seq {
			continue
		}
		uniq = append(uniq, p)
	}
	for _, n := range pieces(len(uniq)) {
		piece := uniq[:n]
		uniq = uniq[n:]
		args := make([]any, 0, 2*n)
		for _, p := range piece {
			args = append(args, p.Seq, p.ActiveNext.Int64)
		}
		if _, err := t.exec(`INSERT INTO change_event_progress (seq, active_next) VALUES (?, ?)`+strings.Repeat(`, (?, ?)`, n-1)+
			` ON CONFLICT (seq) DO UPDATE SET active_next = excluded.active_next`, args...); err != nil {
			return err
		}
	}
	return nil
}

// MarkCommitted implements EventTx.
func (t *eventTx) MarkCommitted(seqs []int64) error {
	return t.updateRuns(`UPDATE change_events SET committed = 1, hidden = 0 WHERE seq BETWEEN ? AND ?`, seqs)
}

// Hide implements EventTx.
func (t *eventTx) Hide(seqs []int64) error {
	return t.updateRuns(`UPDATE change_events SET hidden = 1 WHERE seq BETWEEN ? AND ? AND committed = 0`, seqs)
}

// updateRuns runs q, an update of the rows whose seq is between its two
// parameters, for the runs of consecutive seqs of seqs (sorted): seqs
// mostly come as a few runs.
func (t *eventTx) updateRuns(q string, seqs []int64) error {
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if _, err := t.exec(q, seqs[i], seqs[j]); err != nil {
			return err
		}
		i = j + 1
	}
	return nil
}
