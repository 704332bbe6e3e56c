package state

import (
	"context"
	"fmt"
	"strings"
)

// ImpactRow is what a change event did to its signals, as the impact
// scorer found: one row per start, keyed by its seq.
type ImpactRow struct {
	Seq int64
	Org string
	// Verdict is the scorer's (degraded, improved, no_change, no_data).
	Verdict string
	// ScoredAt is when it was scored, in milliseconds.
	ScoredAt int64
	// Body is the impact as JSON; empty for an event that is not scored
	// (it has none of the labels that tie it to signals), which the row
	// records so that it is not looked at again.
	Body string
}

// UnscoredQuery selects starts that have no impact row.
type UnscoredQuery struct {
	Org string
	// AfterSeq: only rows with a greater seq.
	AfterSeq int64
	// MinTS: only events at or after this time (milliseconds).
	MinTS int64
	Limit int
}

const impactColumns = `seq, org, verdict, scored_at, body`

// unscoredWhere selects a page of UnscoredStarts: organization, after seq,
// from ts, limit. It reads the starts by the change_events_starts index in
// seq order and stops after the page.
const unscoredWhere = `WHERE org = ? AND state = 'start' AND seq > ? AND ts >= ?
	AND NOT EXISTS (SELECT 1 FROM change_event_impact i WHERE i.seq = change_events.seq)
	ORDER BY seq LIMIT ?`

// UnscoredStarts implements ImpactLog.
func (s *DB) UnscoredStarts(ctx context.Context, q UnscoredQuery) ([]EventRow, error) {
	rows, err := queryEvents(ctx, s.db, unscoredWhere, q.Org, q.AfterSeq, q.MinTS, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("read unscored change events: %w", err)
	}
	return rows, nil
}

// AddImpacts implements ImpactLog, in one transaction.
func (s *DB) AddImpacts(ctx context.Context, rs []ImpactRow) error {
	return s.putImpacts(ctx, rs, `ON CONFLICT (seq) DO NOTHING`)
}

// PutImpact implements ImpactLog.
func (s *DB) PutImpact(ctx context.Context, r ImpactRow) error {
	return s.putImpacts(ctx, []ImpactRow{r}, `ON CONFLICT (seq) DO UPDATE SET verdict = excluded.verdict, scored_at = excluded.scored_at, body = excluded.body`)
}

func (s *DB) putImpacts(ctx context.Context, rs []ImpactRow, conflict string) error {
	if len(rs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const perStatement = 100 // 5 columns: 500 parameters.
	tuple := `(?, ?, ?, ?, ?)`
	for i := 0; i < len(rs); i += perStatement {
		part := rs[i:min(i+perStatement, len(rs))]
		args := make([]any, 0, 5*len(part))
		for _, r := range part {
			args = append(args, r.Seq, r.Org, r.Verdict, r.ScoredAt, r.Body)
		}
		q := `INSERT INTO change_event_impact (` + impactColumns + `) VALUES ` + tuple + strings.Repeat(`, `+tuple, len(part)-1) + ` ` + conflict
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store the impact of %d change events: %w", len(part), err)
		}
	}
	return tx.Commit()
}

// Impacts implements ImpactLog.
func (s *DB) Impacts(ctx context.Context, org string, seqs []int64) (map[int64]ImpactRow, error) {
	out := make(map[int64]ImpactRow, len(seqs))
	const chunk = 500
	for i := 0; i < len(seqs); i += chunk {
		part := seqs[i:min(i+chunk, len(seqs))]
		args := make([]any, 0, len(part)+1)
		args = append(args, org)
		for _, seq := range part {
			args = append(args, seq)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT `+impactColumns+` FROM change_event_impact WHERE org = ? AND seq IN (?`+strings.Repeat(`, ?`, len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read the impact of change events: %w", err)
		}
		for rows.Next() {
			var r ImpactRow
			if err := rows.Scan(&r.Seq, &r.Org, &r.Verdict, &r.ScoredAt, &r.Body); err != nil {
				rows.Close()
				return nil, err
			}
			out[r.Seq] = r
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
