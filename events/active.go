package events

import (
	"context"
	"time"

	promstorage "github.com/prometheus/prometheus/storage"
)

// ActiveLag is how far behind now the active samples of an open event are
// written, and how long after a start arrives its backfill waits. Only the
// first sample of a start is written at once. So a stop that arrives within
// the lag of its time, or (backfilling) within the lag of its start's
// arrival, ends the region exactly at its time; the lag is well under
// PromQL's 5m lookback, so an open event reads as active at now.
const ActiveLag = 30 * time.Second

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

// advanceOpen writes the active samples of open events up to now: of all of
// them, or (group) only of those the overlay changed. Expired events leave
// the set; their seqs are returned.
func (s *Service) advanceOpen(ov *overlay, now int64, onlyDirty bool) (map[string][]sample, []int64) {
	out := map[string][]sample{}
	var expired []int64
	visit := func(k string, o *openEvent) {
		smp, exp := s.activeUpTo(o, now)
		out[o.org] = append(out[o.org], smp...)
		if exp {
			expired = append(expired, o.seq)
			s.logger.Info("open event reached the maximum duration; its active series ends", "org", o.org, "id", o.id, "max_duration", s.opts.MaxDuration)
			var undo []undoEntry
			ov.set(k, nil, &undo)
		}
	}
	if onlyDirty {
		for k := range ov.dirty {
			if o := ov.changes[k]; o != nil {
				visit(k, o)
			}
		}
	} else {
		for k, o := range ov.base.byKey {
			visit(k, o)
		}
	}
	return out, expired
}

// commitSamples appends and commits samples per organization, dropping
// samples the TSDB already has.
func (s *Service) commitSamples(ctx context.Context, byOrg map[string][]sample) {
	for slug, smp := range byOrg {
		if len(smp) == 0 {
			continue
		}
		org, err := s.backend.Org(slug)
		if err != nil {
			s.logger.Error("open organization storage", "org", slug, "err", err)
			continue
		}
		app := org.AppenderV2(ctx)
		for _, sm := range smp {
			if _, err := app.Append(0, sm.ls, 0, sm.t, sm.v, nil, nil, promstorage.AOptions{}); err != nil {
				s.logger.Debug("append active sample", "org", slug, "series", sm.ls.String(), "err", err)
			}
		}
		if err := app.Commit(); err != nil {
			s.logger.Error("commit active samples", "org", slug, "err", err)
		}
	}
}

// tick writes the active samples of every open event up to now.
func (s *Service) tick() {
	ctx := context.Background()
	if s.needReplay {
		if err := s.replayUncommitted(ctx); err != nil {
			s.logger.Error("replay uncommitted change events", "err", err)
		} else {
			s.needReplay = false
		}
	}
	if s.open.len() == 0 {
		return
	}
	ov := newOverlay(s.open)
	active, expired := s.advanceOpen(ov, s.now().UnixMilli(), false)
	s.commitSamples(ctx, active)
	ov.apply()
	for _, seq := range expired {
		if err := s.log.ExpireOpen(ctx, seq); err != nil {
			s.logger.Error("expire open change event", "seq", seq, "err", err)
		}
	}
	s.openGauge.Set(float64(s.open.len()))
}
