package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/state"
)

// Recover prepares the writer after a start: it writes again the samples of
// events the log holds but whose series write may have been lost in a
// crash, and brings the active series of open events up to now. Call it
// before Run and before serving.
func (s *Service) Recover(ctx context.Context) error {
	return s.runTick(ctx)
}

// replayUncommitted writes again the samples of the owned organizations'
// uncommitted rows (received ReplayGrace before now or earlier, so that
// another process's writes in flight are left to it). Appending the same
// samples twice is harmless. An open start's active series is written
// again from its start.
func (s *Service) replayUncommitted(ctx context.Context, orgs []string, now time.Time) error {
	q := state.UncommittedQuery{Orgs: orgs}
	if s.opts.ReplayGrace > 0 {
		q.ReceivedBefore = now.Add(-s.opts.ReplayGrace).UnixMilli()
	}
	rows, err := s.log.UncommittedEvents(ctx, q)
	if err != nil {
		return fmt.Errorf("read uncommitted events: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	byOrg := map[string][]sample{}
	for _, row := range rows {
		byOrg[row.Org] = append(byOrg[row.Org], s.rowSamples(row)...)
	}
	failed := s.commitSamples(ctx, byOrg)
	tx, err := s.log.BeginEvents(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var seqs []int64
	for _, row := range rows {
		if failed[row.Org] != nil {
			continue
		}
		seqs = append(seqs, row.Seq)
		if row.Open {
			if err := tx.SetActive(state.WrittenTo(row.Seq, row.TS)); err != nil {
				return err
			}
		}
	}
	if err := tx.MarkCommitted(seqs); err != nil {
		return fmt.Errorf("mark replayed events committed: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mark replayed events committed: %w", err)
	}
	s.logger.Info("replayed change events whose samples were not committed", "count", len(seqs))
	return nil
}

func rowLabels(row state.EventRow) (labels.Labels, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(row.Labels), &m); err != nil {
		return labels.EmptyLabels(), fmt.Errorf("event %q: labels %q: %w", row.ID, row.Labels, err)
	}
	return labels.FromMap(m), nil
}

// rowSamples are the samples an event of the log was written with: its
// point samples and, for a paired stop, its duration and the end of its
// active series. (The active samples of a start are written by ticks.)
func (s *Service) rowSamples(row state.EventRow) []sample {
	lbls, err := rowLabels(row)
	if err != nil {
		s.logger.Error("replay change event", "err", err)
		return nil
	}
	ev := Event{Name: row.Name, State: State(row.State), Time: row.TS, Value: row.Value, Labels: lbls}
	out := s.pointSamples(&ev)
	if ev.State == StateStop && row.PairSeq.Valid && row.DurationMS.Valid {
		out = append(out, sample{ls: withName(DurationMetricName, pairLabels(ev.Name, lbls)), t: ev.Time, v: float64(row.DurationMS.Int64) / 1000})
		// The active series has its start's labels (a stop may add some).
		if start, err := s.log.EventBySeq(context.Background(), row.PairSeq.Int64); err == nil {
			if sl, err := rowLabels(start); err == nil {
				out = append(out, sample{ls: withName(ActiveMetricName, pairLabels(start.Name, sl)), t: ev.Time, v: staleNaN})
			}
		}
	}
	return out
}

// openFromRow is an open start of the log, its active series written up to
// the row's ActiveNext.
func openFromRow(row state.EventRow) (*openEvent, error) {
	lbls, err := rowLabels(row)
	if err != nil {
		return nil, err
	}
	o := &openEvent{
		org:      row.Org,
		seq:      row.Seq,
		id:       row.ID,
		start:    row.TS,
		active:   withName(ActiveMetricName, pairLabels(row.Name, lbls)),
		next:     row.TS,
		received: row.ReceivedAt,
	}
	if row.ActiveNext.Valid && row.ActiveNext.Int64 > o.start {
		o.next = row.ActiveNext.Int64
	}
	return o, nil
}
