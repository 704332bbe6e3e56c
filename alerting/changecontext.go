package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/events"
)

// The annotations every alert carries.
const (
	// AnnotationChangeEvents holds readable lines, one per event.
	AnnotationChangeEvents = "change_events"
	// AnnotationChangeEventsJSON holds a JSON array of ContextEvent.
	AnnotationChangeEventsJSON = "change_events_json"
	// AnnotationSuspectedChanges holds the same events ranked as suspects,
	// one numbered line each, with why (suspects.go).
	AnnotationSuspectedChanges = "suspected_changes"
	// AnnotationSuspectedChangesJSON holds a JSON array of Suspect.
	AnnotationSuspectedChangesJSON = "suspected_changes_json"
)

// ImpactFunc returns what is known now of the impact of a logged change
// event (package impact): its stored impact, a provisional one for a start
// whose after window has not passed, or nil. It is called during rule
// evaluation and API requests, concurrently.
type ImpactFunc func(ctx context.Context, org string, e events.Logged, now time.Time) *events.Impact

// EventLister lists logged change events; *events.Service implements it.
// It is called from rule evaluation and from API requests concurrently.
type EventLister interface {
	List(ctx context.Context, q events.ListQuery) (events.ListResult, error)
	// MaxDuration is how long a start without a stop stays active.
	MaxDuration() time.Duration
}

// ContextOptions configures the change context of alerts.
type ContextOptions struct {
	// Lookback is how long before an alert's start an event still counts.
	Lookback time.Duration
	// MatchLabels tie events to alerts (see matchesAlert). Empty: no
	// event ever matches.
	MatchLabels []string
	// MaxEvents is the most events one alert carries, newest first.
	MaxEvents int
}

// ContextEvent is one change event in an alert's change_events_json.
type ContextEvent struct {
	Name      string            `json:"name"`
	State     string            `json:"state"`
	Timestamp string            `json:"timestamp"`
	Labels    map[string]string `json:"labels"`
	Links     []events.Link     `json:"links"`
}

// contextCacheTTL is how long the change context computed for an alert is
// reused when the alert is read through the API. Alerts that are sent
// always get a fresh one.
const contextCacheTTL = 15 * time.Second

// listLimit is the page size of the lookups of one alert's context, and
// contextMaxPages the most pages one lookup reads. Lookups ask the log only
// for events that do not contradict the alert's labels and stop once
// MaxEvents are found, so further pages are read only past events that
// share no match label with the alert; past contextMaxPages*listLimit of
// those, newer than what the alert's context would hold, the older events
// are not looked at.
const (
	listLimit       = 1000
	contextMaxPages = 10
)

// contextFinder finds the change events around an alert. It is safe for
// concurrent use.
type contextFinder struct {
	events EventLister
	opts   ContextOptions
	now    func() time.Time
	// impact is what is known of an event's impact; nil: nothing.
	impact ImpactFunc

	mtx   sync.Mutex
	cache map[contextKey]cachedContext
}

type contextKey struct {
	org      string
	labels   uint64
	activeAt int64
}

type cachedContext struct {
	ac      alertContext
	err     error
	expires time.Time
}

// alertContext is the change context of an alert: its change events,
// newest first, and the same ranked as suspects.
type alertContext struct {
	events   []ContextEvent
	suspects []Suspect
}

func newContextFinder(ev EventLister, opts ContextOptions) *contextFinder {
	return &contextFinder{events: ev, opts: opts, now: time.Now, cache: map[contextKey]cachedContext{}}
}

// cached returns the context of an alert, computing it when the cached one
// is older than contextCacheTTL.
func (f *contextFinder) cached(ctx context.Context, org string, lset labels.Labels, activeAt time.Time) (alertContext, error) {
	key := contextKey{org: org, labels: lset.Hash(), activeAt: activeAt.UnixMilli()}
	now := f.now()
	f.mtx.Lock()
	c, ok := f.cache[key]
	f.mtx.Unlock()
	if ok && now.Before(c.expires) {
		return c.ac, c.err
	}
	return f.fresh(ctx, org, lset, activeAt)
}

// fresh computes the context of an alert and caches it.
func (f *contextFinder) fresh(ctx context.Context, org string, lset labels.Labels, activeAt time.Time) (alertContext, error) {
	ac, err := f.context(ctx, org, lset, activeAt)
	key := contextKey{org: org, labels: lset.Hash(), activeAt: activeAt.UnixMilli()}
	now := f.now()
	f.mtx.Lock()
	if len(f.cache) >= 10000 {
		for k, c := range f.cache {
			if !now.Before(c.expires) {
				delete(f.cache, k)
			}
		}
		if len(f.cache) >= 10000 {
			clear(f.cache)
		}
	}
	f.cache[key] = cachedContext{ac: ac, err: err, expires: now.Add(contextCacheTTL)}
	f.mtx.Unlock()
	return ac, err
}

// context finds an alert's change events and ranks them as suspects,
// with what is known of their impact now.
func (f *contextFinder) context(ctx context.Context, org string, lset labels.Labels, activeAt time.Time) (alertContext, error) {
	picked, err := f.picked(ctx, org, lset, activeAt)
	if err != nil {
		return alertContext{}, err
	}
	ac := alertContext{events: make([]ContextEvent, 0, len(picked))}
	for _, e := range picked {
		ac.events = append(ac.events, contextEvent(e))
	}
	impacts := make([]*events.Impact, len(picked))
	if f.impact != nil {
		now := f.now()
		for i, e := range picked {
			impacts[i] = f.impact(ctx, org, e, now)
		}
	}
	ac.suspects = RankSuspects(lset, activeAt, picked, impacts)
	return ac, nil
}

// find returns the change events of org that were active at activeAt or
// happened in the lookback window before it, and that match the alert's
// labels, newest first.
func (f *contextFinder) find(ctx context.Context, org string, lset labels.Labels, activeAt time.Time) ([]ContextEvent, error) {
	picked, err := f.picked(ctx, org, lset, activeAt)
	if err != nil {
		return nil, err
	}
	out := make([]ContextEvent, 0, len(picked))
	for _, e := range picked {
		out = append(out, contextEvent(e))
	}
	return out, nil
}

// picked are the logged events of find.
func (f *contextFinder) picked(ctx context.Context, org string, lset labels.Labels, activeAt time.Time) ([]events.Logged, error) {
	if !f.anyMatchLabel(lset) {
		return nil, nil
	}
	to := activeAt.UnixMilli()
	from := to - f.opts.Lookback.Milliseconds()
	maxDur := f.events.MaxDuration().Milliseconds()
	var picked []events.Logged
	seen := map[string]bool{}
	keep := func(e events.Logged) {
		if !seen[e.ID] && f.matchesAlert(lset, e.Labels) {
			seen[e.ID] = true
			picked = append(picked, e)
		}
	}
	ms := f.consistentWith(lset)
	enough := func() bool { return len(picked) >= f.opts.MaxEvents }
	// Everything that happened in the window.
	err := f.scan(ctx, events.ListQuery{Org: org, Start: from, End: to, Matchers: ms, Limit: listLimit}, func(e events.Logged) bool {
		keep(e)
		return !enough()
	})
	if err != nil {
		return nil, err
	}
	// Starts before the window that were still active at the alert's
	// start; they are older than every event of the window.
	if maxDur > 0 && to-maxDur < from && !enough() {
		starts := append(slices.Clip(ms), labels.MustNewMatcher(labels.MatchEqual, "event_state", string(events.StateStart)))
		err := f.scan(ctx, events.ListQuery{Org: org, Start: to - maxDur, End: from - 1, Matchers: starts, Limit: listLimit}, func(e events.Logged) bool {
			if activeAtTime(e, to, maxDur) {
				keep(e)
			}
			return !enough()
		})
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(picked, func(i, j int) bool {
		if picked[i].Time != picked[j].Time {
			return picked[i].Time > picked[j].Time
		}
		return picked[i].Seq > picked[j].Seq
	})
	if len(picked) > f.opts.MaxEvents {
		picked = picked[:f.opts.MaxEvents]
	}
	return picked, nil
}

// scan lists q page by page, newest first, handing each event to visit
// until it returns false, the log has no more, or contextMaxPages pages
// were read.
func (f *contextFinder) scan(ctx context.Context, q events.ListQuery, visit func(events.Logged) bool) error {
	for range contextMaxPages {
		res, err := f.events.List(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range res.Events {
			if !visit(e) {
				return nil
			}
		}
		if res.NextCursor == "" || len(res.Events) < q.Limit {
			return nil
		}
		q.Cursor = res.NextCursor
	}
	return nil
}

// consistentWith returns matchers that select the events no match label
// rules out for the alert: for each match label the alert has, the event
// has the same value or none. matchesAlert still decides; the matchers
// only keep the log from returning events of other services.
func (f *contextFinder) consistentWith(alert labels.Labels) []*labels.Matcher {
	var ms []*labels.Matcher
	for _, name := range f.opts.MatchLabels {
		if v := alert.Get(name); v != "" {
			ms = append(ms, labels.MustNewMatcher(labels.MatchRegexp, name, regexp.QuoteMeta(v)+"|"))
		}
	}
	return ms
}

// activeAtTime reports whether a start event was active at t (ms): open,
// or stopped (or expired after maxDur) at t or later.
func activeAtTime(e events.Logged, t, maxDur int64) bool {
	switch {
	case e.Open:
		return true
	case e.Duration != nil:
		return e.Time+int64(*e.Duration*1000) >= t
	default:
		return e.Time+maxDur >= t
	}
}

func (f *contextFinder) anyMatchLabel(alert labels.Labels) bool {
	for _, name := range f.opts.MatchLabels {
		if alert.Get(name) != "" {
			return true
		}
	}
	return false
}

// matchesAlert decides whether an event is context of an alert: at least
// one match label is set on both with the same value, and no match label
// set on both differs. An event of another service thus never matches an
// alert about a service, even in the same namespace or env; an event that
// names only the env (a cluster-wide change) matches every alert of that
// env.
func (f *contextFinder) matchesAlert(alert labels.Labels, event map[string]string) bool {
	shared := false
	for _, name := range f.opts.MatchLabels {
		av, ev := alert.Get(name), event[name]
		if av == "" || ev == "" {
			continue
		}
		if av != ev {
			return false
		}
		shared = true
	}
	return shared
}

func contextEvent(e events.Logged) ContextEvent {
	ce := ContextEvent{Name: e.Name, State: e.State, Timestamp: e.Timestamp, Labels: e.Labels, Links: []events.Link{}}
	if ce.Labels == nil {
		ce.Labels = map[string]string{}
	}
	if len(e.Links) > 0 {
		var links []events.Link
		if json.Unmarshal(e.Links, &links) == nil && links != nil {
			ce.Links = links
		}
	}
	return ce
}

// contextAnnotations returns the two annotations for an alert's context.
func (f *contextFinder) contextAnnotations(evs []ContextEvent, err error) (text, js string) {
	if err != nil {
		return "change events could not be read: " + err.Error(), "[]"
	}
	if len(evs) == 0 {
		return fmt.Sprintf("no change events sharing %s with this alert in the %s before it started",
			strings.Join(f.opts.MatchLabels, ", "), formatDuration(f.opts.Lookback)), "[]"
	}
	lines := make([]string, 0, len(evs))
	for _, e := range evs {
		lines = append(lines, readableLine(e))
	}
	b, _ := json.Marshal(evs)
	return strings.Join(lines, "\n"), string(b)
}

// readableLine is one event as a line of the change_events annotation:
// name, state, time, labels and the first link.
//
//	checkout-deploy start at 2026-11-25T10:00:00Z {env="prod", service="checkout"} pipeline: https://ci.example/run/42
func readableLine(e ContextEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s at %s %s", e.Name, e.State, e.Timestamp, labels.FromMap(e.Labels).String())
	if len(e.Links) > 0 {
		l := e.Links[0]
		if l.Text != "" {
			fmt.Fprintf(&b, " %s: %s", l.Text, l.Href)
		} else {
			fmt.Fprintf(&b, " %s", l.Href)
		}
	}
	return b.String()
}

// contextTexts are the four annotations of an alert's change context.
type contextTexts struct {
	events, eventsJSON, suspects, suspectsJSON string
}

// texts returns the annotations of an alert's context.
func (f *contextFinder) texts(ac alertContext, err error) contextTexts {
	var c contextTexts
	c.events, c.eventsJSON = f.contextAnnotations(ac.events, err)
	c.suspects, c.suspectsJSON = f.suspectAnnotations(ac.suspects, err)
	return c
}

// withContext returns annotations with the change context set.
func withContext(ann labels.Labels, c contextTexts) labels.Labels {
	b := labels.NewBuilder(ann)
	b.Set(AnnotationChangeEvents, c.events)
	b.Set(AnnotationChangeEventsJSON, c.eventsJSON)
	b.Set(AnnotationSuspectedChanges, c.suspects)
	b.Set(AnnotationSuspectedChangesJSON, c.suspectsJSON)
	return b.Labels()
}

func formatDuration(d time.Duration) string { return model.Duration(d).String() }
