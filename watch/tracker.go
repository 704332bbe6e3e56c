package watch

import (
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/tidemark/tidemark/client"
)

// Outcomes of a region (the outcome label of its stop).
const (
	outcomeCompleted  = "completed"  // the rollout finished: every replica runs the new template
	outcomeFailed     = "failed"     // the rollout missed its progress deadline, or the Rollout is Degraded
	outcomeAborted    = "aborted"    // the Argo Rollout was aborted
	outcomeSuperseded = "superseded" // the template changed again before the rollout finished
	outcomeDeleted    = "deleted"    // the object was deleted
	outcomeAdvanced   = "advanced"   // the Rollout moved on to its next step
	outcomeChanged    = "changed"    // the canary weight changed
	outcomePromoted   = "promoted"   // a pause ended by a promotion
	outcomeResumed    = "resumed"    // a pause ended by itself (its duration passed) or by a resume
)

// tracker remembers the regions (started, not yet stopped events) the
// watcher has opened, by object uid and slot, and turns the handlers'
// decisions into events. Its memory is a cache: after a restart the
// handlers rebuild it from the objects' state, and the events they derive
// again carry the ids they had, so nothing is stored twice.
//
// All methods are safe for concurrent use: one handler call runs at a time,
// and its events are queued before the next call starts, so the queue is in
// the order the changes were seen.
type tracker struct {
	mu      sync.Mutex
	objects map[types.UID]map[string]openRegion
	now     func() time.Time
	enqueue func([]client.Event)
}

// openRegion is a start that was written and whose stop was not.
type openRegion struct {
	key    string
	name   string
	labels map[string]string
}

// The slot of an object's rollout region; sub-regions (an Argo Rollout's
// steps, weights and pauses) have slots of their own.
const slotDeploy = "deploy"

func newTracker(now func() time.Time, enqueue func([]client.Event)) *tracker {
	return &tracker{objects: map[types.UID]map[string]openRegion{}, now: now, enqueue: enqueue}
}

// handle runs f with the object's change record and queues its events.
func (t *tracker) handle(uid types.UID, f func(c *change)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	open := t.objects[uid]
	if open == nil {
		open = map[string]openRegion{}
	}
	c := &change{uid: uid, open: open, now: t.now()}
	f(c)
	if len(open) == 0 {
		delete(t.objects, uid)
	} else {
		t.objects[uid] = open
	}
	if len(c.evs) > 0 {
		t.enqueue(c.evs)
	}
}

// openCount is the number of open regions, for tests and metrics.
func (t *tracker) openCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, o := range t.objects {
		n += len(o)
	}
	return n
}

// change collects the events one handler call decides for one object.
type change struct {
	uid  types.UID
	open map[string]openRegion
	now  time.Time
	evs  []client.Event
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (c *change) emit(name, state, id string, at time.Time, labels, meta map[string]string) {
	m := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		if v != "" {
			m[k] = v
		}
	}
	m["source"] = "kubernetes"
	c.evs = append(c.evs, client.Event{
		Name: name, State: state, Timestamp: formatTime(at), Attributes: labels, ID: id, Metadata: m,
	})
}

// opened returns the open region in slot.
func (c *change) opened(slot string) (openRegion, bool) {
	r, ok := c.open[slot]
	return r, ok
}

// start opens a region in slot, unless the same region (same key) is open
// already. Another region open in the slot is stopped first.
func (c *change) start(slot, key, name string, labels, meta map[string]string) {
	if r, ok := c.open[slot]; ok {
		if r.key == key {
			return
		}
		c.stop(slot, outcomeSuperseded, nil)
	}
	c.emit(name, "start", eventID(c.uid, key, "start"), c.now, labels, meta)
	c.open[slot] = openRegion{key: key, name: name, labels: labels}
}

// stop closes the region in slot, if one is open, with the outcome label.
func (c *change) stop(slot, outcome string, meta map[string]string) {
	r, ok := c.open[slot]
	if !ok {
		return
	}
	delete(c.open, slot)
	c.emit(r.name, "stop", eventID(c.uid, r.key, "stop"), c.now, with(r.labels, labelOutcome, outcome), meta)
}

// subSlots lists the open slots other than the rollout's, sorted.
func (c *change) subSlots() []string {
	var out []string
	for s := range c.open {
		if s != slotDeploy {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// stopAll closes every open region of the object: the sub-regions first,
// then the rollout.
func (c *change) stopAll(outcome string, meta map[string]string) {
	for _, s := range c.subSlots() {
		c.stop(s, outcome, meta)
	}
	c.stop(slotDeploy, outcome, meta)
}

// stopAt writes the stop of a region the watcher has no memory of (one that
// a watcher before a restart may have started), dated at. Its id is the one
// a live stop of that region has: when that was written, this one is a
// duplicate and stores nothing.
func (c *change) stopAt(key, name string, labels map[string]string, outcome string, at time.Time, meta map[string]string) {
	c.emit(name, "stop", eventID(c.uid, key, "stop"), at, with(labels, labelOutcome, outcome), meta)
}

// point writes a change that has no duration: a start and a stop at the
// same instant, which Tidemark draws as a point and counts in
// change_events.
func (c *change) point(key, name string, labels, meta map[string]string) {
	c.emit(name, "start", eventID(c.uid, key, "start"), c.now, labels, meta)
	c.emit(name, "stop", eventID(c.uid, key, "stop"), c.now, labels, meta)
}

// recent reports whether t is within window before now (and not after it by
// more than a clock skew's worth).
func recent(t, now time.Time, window time.Duration) bool {
	if t.IsZero() || window <= 0 {
		return false
	}
	return !t.Before(now.Add(-window)) && !t.After(now.Add(time.Minute))
}

// joinKey joins key parts.
func joinKey(parts ...string) string { return strings.Join(parts, ":") }
