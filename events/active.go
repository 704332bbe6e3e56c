package events

import (
	"context"
	"fmt"
	"time"

	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/tidemark/tidemark/state"
)

// ActiveLag is how far behind now the active samples of an open event are
// written, and how long after a start arrives its backfill waits. Only the
// first sample of a start is written at once. So a stop that arrives within
// the lag of its time, or (backfilling) within the lag of its start's
// arrival, ends the region exactly at its time; the lag is well under
// PromQL's 5m lookback, so an open event reads as active at now.
const ActiveLag = 30 * time.Second

// Owner says which organizations' once-per-organization work (the active
// series, replaying uncommitted rows) this service does: with several
// processes on one event log, each organization's is done by the one that
// holds its lease.
type Owner interface {
	// Owned returns the organizations owned now, or all true for every one.
	Owned() (orgs []string, all bool)
}

// owned is the organization filter of the service's own work: nil for all.
func (s *Service) owned() []string {
	if s.opts.Owner == nil {
		return nil
	}
	orgs, all := s.opts.Owner.Owned()
	if all {
		return nil
	}
	if orgs == nil {
		orgs = []string{}
	}
	return orgs
}

// activeUpTo returns o's active samples up to now less the lag, ending the
// series at the maximum duration. expired is true once it has ended.
func (s *Service) activeUpTo(o *openEvent, now int64) (out []sample, expired bool) {
	end := o.start + s.opts.MaxDuration.Milliseconds()
	lag := ActiveLag.Milliseconds()
	if now >= end && now >= o.received+lag {
		out = o.advance(end, s.res)
		return append(out, sample{ls: o.active, t: end, v: staleNaN}), true
	}
	limit := now - lag + 1
	if now < o.received+lag {
		limit = o.start + 1 // Only the first sample, until the backfill waits out the lag.
	}
	if o.next == o.start && o.start <= now {
		limit = max(limit, o.start+1)
	}
	return o.advance(min(limit, end), s.res), false
}

// commitSamples appends and commits samples per organization, dropping
// samples the TSDB already has. It returns the organizations whose commit
// failed.
func (s *Service) commitSamples(ctx context.Context, byOrg map[string][]sample) map[string]error {
	failed := map[string]error{}
	for slug, smp := range byOrg {
		if len(smp) == 0 {
			continue
		}
		org, err := s.backend.Org(slug)
		if err != nil {
			s.logger.Error("open organization storage", "org", slug, "err", err)
			failed[slug] = err
			continue
		}
		app := org.AppenderV2(ctx)
		for _, sm := range smp {
			if _, err := app.Append(0, sm.ls, 0, sm.t, sm.v, nil, nil, promstorage.AOptions{}); err != nil {
				s.logger.Debug("append active sample", "org", slug, "series", sm.ls.String(), "err", err)
			}
		}
		if err := app.Commit(); err != nil {
			s.logger.Error("commit change event samples", "org", slug, "err", err)
			failed[slug] = err
		}
	}
	return failed
}

// tick does the once-per-organization work of the owned organizations:
// it writes the samples of uncommitted rows again, then the active samples
// of every open event up to now, recording in the log how far each is
// written and which expired. The log is updated only after the samples are
// stored, so a crash in between writes some samples twice, never none.
func (s *Service) tick() {
	if err := s.runTick(context.Background()); err != nil {
		s.logger.Error("write the active series of open change events", "err", err)
	}
}

func (s *Service) runTick(ctx context.Context) error {
	now := s.now()
	orgs := s.owned()
	if err := s.flushMarks(ctx, nil); err != nil {
		s.logger.Warn("mark change events committed", "err", err)
	}
	if err := s.replayUncommitted(ctx, orgs, now); err != nil {
		s.logger.Error("replay uncommitted change events", "err", err)
	}
	tx, err := s.log.BeginEvents(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	opens, err := s.readOpen(tx, orgs)
	if err != nil {
		return err
	}
	type progress struct {
		o       *openEvent
		expired bool
	}
	var moved []progress
	byOrg := map[string][]sample{}
	for _, o := range opens {
		from := o.next
		smp, exp := s.activeUpTo(o, now.UnixMilli())
		if o.next != from || exp {
			byOrg[o.org] = append(byOrg[o.org], smp...)
			moved = append(moved, progress{o, exp})
		}
	}
	failed := s.commitSamples(ctx, byOrg)
	var written []state.Progress
	for _, p := range moved {
		if failed[p.o.org] != nil {
			continue // Written again at the next tick.
		}
		written = append(written, state.WrittenTo(p.o.seq, p.o.next))
		if p.expired {
			s.logger.Info("open event reached the maximum duration; its active series ends", "org", p.o.org, "id", p.o.id, "max_duration", s.opts.MaxDuration)
			if err := tx.ExpireOpen(p.o.seq); err != nil {
				return err
			}
		}
	}
	if err := tx.SetActive(written...); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit event log: %w", err)
	}
	s.openGauge.Set(float64(len(opens)))
	return nil
}

// readOpen returns the owned organizations' open starts, in seq order, as
// the log has them in tx: their progress from the log, the rest from the
// last tick's read where it has them (a start's row changes only in
// active_next until it is closed), from the log otherwise.
func (s *Service) readOpen(tx state.EventTx, orgs []string) ([]*openEvent, error) {
	prog, err := tx.OpenProgress(state.OpenQuery{Orgs: orgs})
	if err != nil {
		return nil, err
	}
	// Seqs grow, so the starts not seen yet are mostly above every one
	// seen: read from the lowest of them up.
	var firstNew int64
	for _, p := range prog {
		if _, ok := s.opens[p.Seq]; !ok {
			firstNew = p.Seq
			break
		}
	}
	known := s.opens
	if known == nil {
		known = map[int64]*openEvent{}
	}
	if firstNew != 0 {
		rows, err := tx.OpenStarts(state.OpenQuery{Orgs: orgs, AfterSeq: firstNew - 1})
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			if _, ok := known[row.Seq]; ok {
				continue
			}
			o, err := openFromRow(row)
			if err != nil {
				s.logger.Error("read open change event", "err", err)
				continue
			}
			known[row.Seq] = o
		}
	}
	// Only the starts still open are kept for the next tick.
	out := make([]*openEvent, 0, len(prog))
	s.opens = make(map[int64]*openEvent, len(prog))
	for _, p := range prog {
		o, ok := known[p.Seq]
		if !ok {
			continue // Unreadable: logged above.
		}
		s.opens[p.Seq] = o
		cur := *o
		cur.next = cur.start
		if p.ActiveNext.Valid && p.ActiveNext.Int64 > cur.start {
			cur.next = p.ActiveNext.Int64
		}
		out = append(out, &cur)
	}
	return out, nil
}
