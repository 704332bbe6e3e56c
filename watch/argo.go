package watch

import (
	"encoding/json"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// argoRevision is the revision annotation Argo Rollouts keeps, as the
// Deployment controller does.
const argoRevision = "rollout.argoproj.io/revision"

// argoRollout is what the watcher reads of an Argo Rollout
// (argoproj.io/v1alpha1): the rollout of its template as for a Deployment,
// and its canary steps, weight and pauses.
type argoRollout struct {
	rollout
	u         *unstructured.Unstructured
	aborted   bool
	abortedAt time.Time
	// steps are the canary steps (nil for a blue-green Rollout).
	steps []any
	// step is status.currentStepIndex, -1 when unset.
	step   int
	weight int
	paused bool
	// pauseReason and pauseStart describe the first pause condition.
	pauseReason string
	pauseStart  time.Time
	promoteFull bool
	phase       string
	// observed: the controller has seen the latest spec, so the status
	// (step, weight, pause) is about the current template.
	observed bool
}

func str(u map[string]any, fields ...string) string {
	s, _, _ := unstructured.NestedString(u, fields...)
	return s
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// argoView reads a Rollout.
func argoView(obj any) (argoRollout, bool) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return argoRollout{}, false
	}
	o := u.Object
	a := argoRollout{u: u, step: -1}
	a.kind, a.obj, a.revAnnotation = "Rollout", u, argoRevision

	// The pod template, typed where it decodes, for the images and labels.
	tmpl, hasTemplate, _ := unstructured.NestedMap(o, "spec", "template")
	var pt corev1.PodTemplateSpec
	if hasTemplate {
		_ = runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &pt)
		a.hash = templateHash(tmpl)
	} else {
		// A Rollout that references a Deployment's template (workloadRef):
		// the controller's hash of it tells when it changes.
		a.hash = str(o, "status", "currentPodHash")
	}
	a.podLabels, a.images = pt.Labels, images(&pt.Spec)

	st, _, _ := unstructured.NestedMap(o, "status")
	a.aborted, _, _ = unstructured.NestedBool(st, "abort")
	a.abortedAt = parseTime(str(st, "abortedAt"))
	a.promoteFull, _, _ = unstructured.NestedBool(st, "promoteFull")
	a.phase = str(st, "phase")
	a.message = str(st, "message")
	if i, ok, _ := unstructured.NestedInt64(st, "currentStepIndex"); ok {
		a.step = int(i)
	}
	a.steps, _, _ = unstructured.NestedSlice(o, "spec", "strategy", "canary", "steps")

	specPaused, _, _ := unstructured.NestedBool(o, "spec", "paused")
	controllerPause, _, _ := unstructured.NestedBool(st, "controllerPause")
	pcs, _, _ := unstructured.NestedSlice(st, "pauseConditions")
	a.paused = specPaused || controllerPause || len(pcs) > 0
	if len(pcs) > 0 {
		if pc, ok := pcs[0].(map[string]any); ok {
			a.pauseReason, _ = pc["reason"].(string)
			s, _ := pc["startTime"].(string)
			a.pauseStart = parseTime(s)
		}
	} else if specPaused {
		a.pauseReason = "Manual"
	}

	// The weight: the traffic router's, or the last setWeight reached.
	if w, ok, _ := unstructured.NestedInt64(st, "canary", "weights", "canary", "weight"); ok {
		a.weight = int(w)
	} else {
		a.weight = a.setWeight()
	}

	stable, current := str(st, "stableRS"), str(st, "currentPodHash")
	observed := true
	if og, err := strconv.ParseInt(str(st, "observedGeneration"), 10, 64); err == nil {
		observed = og >= u.GetGeneration()
	}
	a.observed = observed
	progressing := a.phase == "Progressing" || a.phase == "Paused"
	a.failed = a.phase == "Degraded" && !a.aborted
	a.rolling = !a.aborted && (!observed || stable == "" || stable != current || progressing)
	a.done = !a.aborted && observed && stable != "" && stable == current && !progressing && a.phase != "Degraded"
	a.changedAt, _ = managedTimes(u)
	conds, _, _ := unstructured.NestedSlice(st, "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		typ, _ := m["type"].(string)
		status, _ := m["status"].(string)
		if status != "True" || (typ != "Completed" && typ != "Healthy") {
			continue
		}
		for _, f := range []string{"lastUpdateTime", "lastTransitionTime"} {
			s, _ := m[f].(string)
			if t := parseTime(s); t.After(a.doneAt) {
				a.doneAt = t
			}
		}
	}
	if a.aborted {
		a.doneAt = a.abortedAt
	}
	return a, true
}

// stepAt returns step i of the canary steps as a map.
func (a *argoRollout) stepAt(i int) map[string]any {
	if i < 0 || i >= len(a.steps) {
		return nil
	}
	m, _ := a.steps[i].(map[string]any)
	return m
}

// setWeight is the weight of the last setWeight step at or before the
// current one (as Argo Rollouts computes it), 100 past the last step.
func (a *argoRollout) setWeight() int {
	if a.step < 0 || len(a.steps) == 0 {
		return 0
	}
	if a.step >= len(a.steps) {
		return 100
	}
	for i := a.step; i >= 0; i-- {
		if w, ok, _ := unstructured.NestedInt64(a.stepAt(i), "setWeight"); ok {
			return int(w)
		}
	}
	return 0
}

// stepKind names a step by its one field: setWeight, pause, analysis, ...
func stepKind(step map[string]any) string {
	keys := make([]string, 0, len(step))
	for k := range step {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

// pauseDuration is a pause step's duration, 0 when it waits for a
// promotion.
func pauseDuration(step map[string]any) time.Duration {
	p, ok := step["pause"].(map[string]any)
	if !ok {
		return 0
	}
	switch v := p["duration"].(type) {
	case int64:
		return time.Duration(v) * time.Second
	case float64:
		return time.Duration(v * float64(time.Second))
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return time.Duration(n) * time.Second
		}
		d, _ := time.ParseDuration(v)
		return d
	}
	return 0
}

// Sub-region slots of a Rollout.
func stepSlot(i int) string   { return "step-" + strconv.Itoa(i) }
func weightSlot(w int) string { return "weight-" + strconv.Itoa(w) }
func pauseSlot(step int) string {
	if step < 0 {
		return "pause"
	}
	return "pause-" + strconv.Itoa(step)
}

// argoRollouts follows Argo Rollouts: the region "deploy" as for a
// Deployment, and within it "deploy-step" (each canary step),
// "deploy-weight" (each canary weight) and "deploy-pause" (each pause), and
// the point "deploy-promote".
type argoRollouts struct {
	static map[string]string
	window time.Duration
}

func (h *argoRollouts) labels(a argoRollout) map[string]string {
	return baseLabels(h.static, a.kind, a.obj, a.podLabels)
}

// key is the rollout's key; a retry after an abort gets one of its own.
func (h *argoRollouts) key(old *argoRollout, a argoRollout) string {
	var o *rollout
	if old != nil {
		o = &old.rollout
	}
	k := rolloutKey(o, a.rollout)
	if !a.abortedAt.IsZero() && !a.aborted {
		k += "-retry" + strconv.FormatInt(a.abortedAt.Unix(), 10)
	}
	return k
}

// sub is a sub-region the Rollout's state implies.
type sub struct {
	slot, name string
	labels     map[string]string
	meta       map[string]string
}

// subs are the sub-regions open in state a.
func (h *argoRollouts) subs(a argoRollout) []sub {
	if !a.rolling || a.done || a.aborted || a.failed || !a.observed {
		return nil
	}
	base := h.labels(a)
	var out []sub
	if a.step >= 0 && a.step < len(a.steps) {
		st := a.stepAt(a.step)
		b, _ := json.Marshal(st)
		out = append(out, sub{slot: stepSlot(a.step), name: eventStep,
			labels: with(base, "step", strconv.Itoa(a.step)),
			meta:   map[string]string{"step_kind": stepKind(st), "step_spec": string(b), "steps": strconv.Itoa(len(a.steps))}})
	}
	if a.weight > 0 && a.steps != nil {
		out = append(out, sub{slot: weightSlot(a.weight), name: eventWeight,
			labels: with(base, "weight", strconv.Itoa(a.weight))})
	}
	if a.paused {
		l := base
		if a.step >= 0 {
			l = with(base, "step", strconv.Itoa(a.step))
		}
		out = append(out, sub{slot: pauseSlot(a.step), name: eventPause, labels: l,
			meta: map[string]string{"reason": a.pauseReason, "message": a.message}})
	}
	return out
}

// syncSubs stops the open sub-regions that state a no longer implies and
// starts the ones it does.
func (h *argoRollouts) syncSubs(c *change, old *argoRollout, a argoRollout) {
	d, ok := c.opened(slotDeploy)
	if !ok {
		return
	}
	want := map[string]sub{}
	for _, s := range h.subs(a) {
		want[s.slot] = s
	}
	promoted := old != nil && h.promoted(*old, a, c.now)
	for _, slot := range c.subSlots() {
		if _, keep := want[slot]; keep {
			continue
		}
		outcome := outcomeAdvanced
		switch {
		case len(slot) >= 6 && slot[:6] == "weight":
			outcome = outcomeChanged
		case len(slot) >= 5 && slot[:5] == "pause":
			outcome = outcomeResumed
			if promoted {
				outcome = outcomePromoted
			}
		}
		c.stop(slot, outcome, nil)
	}
	for _, s := range h.subs(a) {
		c.start(s.slot, joinKey(d.key, s.slot), s.name, s.labels, s.meta)
	}
	if promoted {
		full := "false"
		if a.promoteFull {
			full = "true"
		}
		l := with(h.labels(a), "full", full)
		if old.step >= 0 {
			l = with(l, "step", strconv.Itoa(old.step))
		}
		c.point(joinKey(d.key, changeKey("promote", a.u, strconv.Itoa(old.step))), eventPromote, l, map[string]string{"reason": old.pauseReason})
	}
}

// promoted reports whether the change from old to a is a promotion: a full
// promotion, or the end of a pause that only a promotion ends (a pause step
// with no duration, a blue-green pause) or that ended before its duration.
func (h *argoRollouts) promoted(old, a argoRollout, now time.Time) bool {
	if a.aborted {
		return false
	}
	if a.promoteFull && !old.promoteFull {
		return true
	}
	if !old.paused || a.paused || old.pauseReason == "Manual" {
		return false
	}
	if old.pauseReason == "BlueGreenPause" {
		return true
	}
	d := pauseDuration(old.stepAt(old.step))
	if d == 0 {
		return old.stepAt(old.step) != nil && old.stepAt(old.step)["pause"] != nil
	}
	return !old.pauseStart.IsZero() && now.Before(old.pauseStart.Add(d-2*time.Second))
}

// ended stops every open region of the Rollout when state a ends the
// rollout, and reports whether it did.
func (h *argoRollouts) ended(c *change, a argoRollout) bool {
	meta := map[string]string{"phase": a.phase, "message": a.message, "images": a.images}
	switch {
	case a.aborted:
		c.stopAll(outcomeAborted, meta)
	case a.failed:
		c.stopAll(outcomeFailed, meta)
	case a.done:
		c.stopAll(outcomeCompleted, meta)
	default:
		return false
	}
	return true
}

func (h *argoRollouts) add(c *change, obj any, initial bool) {
	a, ok := argoView(obj)
	if !ok {
		return
	}
	key := h.key(nil, a)
	labels := h.labels(a)
	switch {
	case a.rolling && !a.done && !a.failed:
		observed := "created"
		if initial {
			observed = "initial-list"
		}
		c.start(slotDeploy, key, eventDeploy, labels, startMeta(nil, a.rollout, observed))
		if initial {
			// Steps before the current one ended while no watcher ran:
			// stop them in case a watcher before a restart started them.
			h.stopPast(c, a, key, labels, a.step, outcomeAdvanced, c.now)
		}
		h.syncSubs(c, nil, a)
	case initial && (a.done || a.failed || a.aborted) && recent(a.doneAt, c.now, h.window):
		outcome := outcomeCompleted
		switch {
		case a.aborted:
			outcome = outcomeAborted
		case a.failed:
			outcome = outcomeFailed
		}
		meta := map[string]string{"phase": a.phase, "message": a.message}
		h.stopPast(c, a, key, labels, len(a.steps), outcome, a.doneAt)
		c.stopAt(key, eventDeploy, labels, outcome, a.doneAt, meta)
	}
}

// stopPast writes the stops of the steps before step end, of their pauses,
// and of the weights they set other than the current one, for a Rollout
// found by a watcher with no memory of it.
func (h *argoRollouts) stopPast(c *change, a argoRollout, key string, labels map[string]string, end int, outcome string, at time.Time) {
	weights := map[int]bool{}
	for i := 0; i < end && i < len(a.steps); i++ {
		step := a.stepAt(i)
		l := with(labels, "step", strconv.Itoa(i))
		c.stopAt(joinKey(key, stepSlot(i)), eventStep, l, outcome, at, nil)
		if _, ok := step["pause"]; ok {
			c.stopAt(joinKey(key, pauseSlot(i)), eventPause, l, outcome, at, nil)
		}
		if w, ok, _ := unstructured.NestedInt64(step, "setWeight"); ok && w > 0 {
			weights[int(w)] = true
		}
	}
	if end < len(a.steps) {
		delete(weights, a.weight)
	}
	ws := make([]int, 0, len(weights))
	for w := range weights {
		ws = append(ws, w)
	}
	sort.Ints(ws)
	for _, w := range ws {
		c.stopAt(joinKey(key, weightSlot(w)), eventWeight, with(labels, "weight", strconv.Itoa(w)), outcome, at, nil)
	}
}

func (h *argoRollouts) update(c *change, oldObj, curObj any) {
	o, ok := argoView(oldObj)
	if !ok {
		return
	}
	a, ok := argoView(curObj)
	if !ok {
		return
	}
	switch {
	case o.hash != a.hash:
		c.stopAll(outcomeSuperseded, nil)
		c.start(slotDeploy, h.key(&o, a), eventDeploy, h.labels(a), startMeta(&o.rollout, a.rollout, "update"))
	case o.aborted && !a.aborted && a.rolling:
		// A retry after an abort: the same template rolls out again.
		m := startMeta(nil, a.rollout, "retry")
		c.start(slotDeploy, h.key(nil, a), eventDeploy, h.labels(a), m)
	}
	if _, open := c.opened(slotDeploy); !open {
		return
	}
	if h.ended(c, a) {
		return
	}
	h.syncSubs(c, &o, a)
}
