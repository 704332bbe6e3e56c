package events

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/tidemark/tidemark/state"
)

// Recover prepares the writer after a start: it re-appends the samples of
// events the log holds but whose TSDB write may have been lost in a crash,
// and reloads the open events so their active series go on. Call it before
// Run and before serving.
func (s *Service) Recover(ctx context.Context) error {
	if err := s.replayUncommitted(ctx); err != nil {
		return err
	}
	rows, err := s.log.OpenEvents(ctx)
	if err != nil {
		return fmt.Errorf("read open events: %w", err)
	}
	for _, row := range rows {
		o, err := s.reopen(ctx, row)
		if err != nil {
			return err
		}
		s.open.put(openKey(row.Org, row.PairKey), o)
	}
	if len(rows) > 0 {
		s.logger.Info("reloaded open change events", "count", len(rows))
	}
	// Bring the active series up to now at once, not at the first tick.
	s.tick()
	return nil
}

// replayUncommitted re-appends the samples of uncommitted events. TSDB
// appends of identical samples are no-ops, so replaying twice is harmless.
func (s *Service) replayUncommitted(ctx context.Context) error {
	rows, err := s.log.UncommittedEvents(ctx)
	if err != nil {
		return fmt.Errorf("read uncommitted events: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	byOrg := map[string][]sample{}
	seqs := make([]int64, 0, len(rows))
	for _, row := range rows {
		byOrg[row.Org] = append(byOrg[row.Org], s.rowSamples(row)...)
		seqs = append(seqs, row.Seq)
	}
	s.commitSamples(ctx, byOrg)
	if err := s.log.MarkCommitted(ctx, seqs); err != nil {
		return fmt.Errorf("mark replayed events committed: %w", err)
	}
	s.logger.Info("replayed change events whose samples were not committed", "count", len(rows))
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
// active series. (The active samples of a start are written from the open set.)
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

// reopen rebuilds an open event from its log row, continuing its active
// series after the last sample the TSDB holds.
func (s *Service) reopen(ctx context.Context, row state.EventRow) (*openEvent, error) {
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
	org, err := s.backend.Org(row.Org)
	if err != nil {
		return nil, err
	}
	q, err := org.Querier(row.TS, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("query active series of event %q: %w", row.ID, err)
	}
	defer q.Close()
	var ms []*labels.Matcher
	o.active.Range(func(l labels.Label) {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
	})
	set := q.Select(ctx, false, nil, ms...)
	last := int64(-1)
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
			if t := it.AtT(); t > last {
				last = t
			}
		}
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("query active series of event %q: %w", row.ID, err)
	}
	if last >= o.start {
		steps := (last-o.start)/s.res + 1
		o.next = o.start + steps*s.res
	}
	return o, nil
}
