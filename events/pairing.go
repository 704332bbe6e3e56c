package events

import (
	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/state"
)

// openEvent is a start without a stop: its active series is being written.
type openEvent struct {
	org string
	// seq is its start's row; for a start of the group being written, it
	// is set when the group is stored.
	seq   int64
	id    string
	start int64
	// active are the labels of the change_event_active series.
	active labels.Labels
	// next is the next grid point of the active series to write.
	next int64
	// received is when the start arrived (milliseconds).
	received int64
}

func openKey(org, pairKey string) string { return org + "\xff" + pairKey }

// advance returns the active samples of o on its grid from o.next up to
// limit (exclusive) and moves o.next past them. Grid points are
// start + k*res, so a region starts exactly at its start.
func (o *openEvent) advance(limit, res int64) []sample {
	var out []sample
	for ; o.next < limit; o.next += res {
		out = append(out, sample{ls: o.active, t: o.next, v: 1})
	}
	return out
}

// lastWritten is the time of the last active sample written, or -1.
func (o *openEvent) lastWritten(res int64) int64 {
	if o.next <= o.start {
		return -1
	}
	return o.next - res
}

// openSet is the set of open events, by organization and pair key, with an
// index by organization and event name for stops that carry extra labels.
type openSet struct {
	byKey  map[string]*openEvent
	byName map[string]map[string]bool // nameKey -> keys
}

func newOpenSet() *openSet {
	return &openSet{byKey: map[string]*openEvent{}, byName: map[string]map[string]bool{}}
}

func nameKey(org string, active labels.Labels) string {
	return org + "\xff" + active.Get("event_name")
}

func (s *openSet) put(k string, o *openEvent) {
	s.byKey[k] = o
	nk := nameKey(o.org, o.active)
	if s.byName[nk] == nil {
		s.byName[nk] = map[string]bool{}
	}
	s.byName[nk][k] = true
}

func (s *openSet) remove(k string) {
	o := s.byKey[k]
	if o == nil {
		return
	}
	delete(s.byKey, k)
	nk := nameKey(o.org, o.active)
	delete(s.byName[nk], k)
	if len(s.byName[nk]) == 0 {
		delete(s.byName, nk)
	}
}

func (s *openSet) len() int { return len(s.byKey) }

// overlay records changes to the open set made by a group of requests, so
// that a request that fails can be undone alone; the log is changed only
// when the group is stored.
type overlay struct {
	base    *openSet
	changes map[string]*openEvent // nil: removed
	dirty   map[string]bool
	// added indexes the events added in changes by name key.
	added map[string]map[string]bool
}

func newOverlay(base *openSet) *overlay {
	return &overlay{base: base, changes: map[string]*openEvent{}, dirty: map[string]bool{}, added: map[string]map[string]bool{}}
}

func (ov *overlay) get(k string) *openEvent {
	if o, ok := ov.changes[k]; ok {
		return o
	}
	return ov.base.byKey[k]
}

// undoEntry restores one key of the overlay.
type undoEntry struct {
	key     string
	had     bool
	prev    *openEvent
	wasDirt bool
}

func (ov *overlay) set(k string, o *openEvent, undo *[]undoEntry) {
	prev, had := ov.changes[k]
	*undo = append(*undo, undoEntry{key: k, had: had, prev: prev, wasDirt: ov.dirty[k]})
	ov.changes[k] = o
	if o != nil {
		ov.dirty[k] = true
		nk := nameKey(o.org, o.active)
		if ov.added[nk] == nil {
			ov.added[nk] = map[string]bool{}
		}
		ov.added[nk][k] = true
	} else {
		delete(ov.dirty, k)
	}
}

func (ov *overlay) undo(entries []undoEntry) {
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.had {
			ov.changes[e.key] = e.prev
		} else {
			delete(ov.changes, e.key)
		}
		if e.wasDirt {
			ov.dirty[e.key] = true
		} else {
			delete(ov.dirty, e.key)
		}
	}
}

// findCovered returns the open event of org whose active labels (but the
// metric name) all appear, with equal values, in pl, preferring the one with
// the most labels. It lets a stop carry labels its start did not have, such
// as an outcome.
func (ov *overlay) findCovered(org string, pl labels.Labels) (string, *openEvent) {
	var bestKey string
	var best *openEvent
	nk := org + "\xff" + pl.Get("event_name")
	consider := func(k string) {
		o := ov.get(k)
		if o == nil || o.org != org || !covers(pl, o.active) {
			return
		}
		if best == nil || o.active.Len() > best.active.Len() || (o.active.Len() == best.active.Len() && o.start > best.start) {
			bestKey, best = k, o
		}
	}
	for k := range ov.added[nk] {
		consider(k)
	}
	for k := range ov.base.byName[nk] {
		if _, changed := ov.changes[k]; !changed {
			consider(k)
		}
	}
	return bestKey, best
}

// covers reports whether every label of sub but __name__ is in pl.
func covers(pl, sub labels.Labels) bool {
	ok := true
	sub.Range(func(l labels.Label) {
		if ok && l.Name != labels.MetricName && pl.Get(l.Name) != l.Value {
			ok = false
		}
	})
	return ok
}

// pair matches a start or stop with the open set and adds the samples and
// log changes that follow from it. The seqs of the rows are not known yet:
// the pair refers to the start, whose seq is set when the group is stored.
func (s *Service) pair(ov *overlay, p *plannedRequest, row *state.EventRow, ev *Event) {
	k := openKey(row.Org, row.PairKey)
	o := ov.get(k)
	switch ev.State {
	case StateStart:
		if o != nil {
			s.logger.Info("start of an event that is already open; keeping the first start", "org", row.Org, "event", row.PairKey, "open_since", formatTime(o.start))
			return
		}
		pl := pairLabels(ev.Name, ev.Labels)
		o := &openEvent{org: row.Org, id: row.ID, start: ev.Time, active: withName(ActiveMetricName, pl), next: ev.Time, received: row.ReceivedAt}
		ov.set(k, o, &p.undo)
		p.opened = append(p.opened, openedStart{row: row, ev: o})
		row.Open = true
	case StateStop:
		if o == nil {
			k, o = ov.findCovered(row.Org, pairLabels(ev.Name, ev.Labels))
		}
		if o == nil || ev.Time < o.start {
			s.unmatched.Inc()
			s.logger.Info("stop without an open start", "org", row.Org, "event", row.PairKey, "time", formatTime(ev.Time))
			return
		}
		oc := *o
		last := oc.lastWritten(s.res)
		staleAt := ev.Time
		switch {
		case last < ev.Time:
			// The usual case: the region ends exactly at the stop.
			p.samples = append(p.samples, oc.advance(ev.Time, s.res)...)
		case last == oc.start:
			// A stop at its start's very time: a region of one millisecond.
			staleAt = ev.Time + 1
		default:
			// The stop arrived later than the active-series lag and is dated
			// before samples already written. Samples are never deleted (the
			// TSDB's tombstones are avoided), so the region ends just after
			// the last written sample instead.
			staleAt = last + 1
			s.logger.Info("stop arrived after active samples past its time; its region ends at the last written sample",
				"org", row.Org, "event", row.PairKey, "stop", formatTime(ev.Time), "region_end", formatTime(last))
		}
		p.samples = append(p.samples, sample{ls: oc.active, t: staleAt, v: staleNaN})
		dur := ev.Time - oc.start
		p.samples = append(p.samples, sample{ls: withName(DurationMetricName, pairLabels(ev.Name, ev.Labels)), t: ev.Time, v: float64(dur) / 1000})
		p.pairs = append(p.pairs, closedPair{start: o, stop: row, durationMS: dur})
		ov.set(k, nil, &p.undo)
	}
}
