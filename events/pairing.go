package events

import (
	"github.com/prometheus/prometheus/model/labels"
)

// openEvent is a start without a stop: its active series is being written.
type openEvent struct {
	org   string
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
// that a request that fails can be undone and the whole group applied only
// once the event log has committed it.
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

// apply writes the changes into the base set.
func (ov *overlay) apply() {
	for k, o := range ov.changes {
		ov.base.remove(k)
		if o != nil {
			ov.base.put(k, o)
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
