package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/storage"
)

// Webhook receivers turn the notifications of progressive-delivery tools
// into change events, so no job has to send them.

// hookAnswer is what a receiver answers.
type hookAnswer struct {
	Message string          `json:"message"`
	Reason  string          `json:"reason,omitempty"`
	Events  []events.Result `json:"events,omitempty"`
}

// decodeHook decodes a notification. Unknown fields are ignored: the
// payloads are the tools' (Flagger adds fields such as checksum between
// versions) or templates users extend.
func decodeHook(r *http.Request, what string, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(http.StatusBadRequest, what+": "+strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// flaggerEvent is Flagger's event webhook payload.
type flaggerEvent struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
}

// flaggerHook receives Flagger's event webhook: a canary that is
// Progressing opens the event <canary> (labels canary, namespace); Succeeded
// or Failed stops it with phase and outcome; other phases are ignored.
func (a *eventsAPI) flaggerHook(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	var fe flaggerEvent
	if err := decodeHook(r, "flagger event", &fe); err != nil {
		return nil, err
	}
	if fe.Name == "" || fe.Namespace == "" {
		return nil, errorf(http.StatusBadRequest, `flagger event: fields "name" and "namespace" are required; accepted: Flagger's event webhook payload {name, namespace, phase, metadata}`)
	}
	ts := a.now().UnixMilli()
	if v := fe.Metadata["timestamp"]; v != "" {
		t, err := events.ParseTimestamp(v)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, fmt.Sprintf("flagger event: field \"metadata.timestamp\" value %q is not a time; accepted: epoch milliseconds or RFC 3339", v))
		}
		ts = t
	}
	attrs := map[string]string{"canary": fe.Name, "namespace": fe.Namespace}
	meta := map[string]any{"source": "flagger"}
	if fe.Checksum != "" {
		meta["checksum"] = fe.Checksum
	}
	for k, v := range fe.Metadata {
		meta[k] = v
	}
	var st events.State
	switch strings.ToLower(fe.Phase) {
	case "progressing":
		st = events.StateStart
	case "succeeded", "failed":
		st = events.StateStop
		attrs["phase"] = strings.ToLower(fe.Phase)
		attrs["outcome"] = map[string]string{"succeeded": "success", "failed": "failure"}[strings.ToLower(fe.Phase)]
	default:
		return hookAnswer{Message: "ignored", Reason: fmt.Sprintf("phase %q neither starts nor ends a canary run (Progressing starts, Succeeded and Failed end)", fe.Phase)}, nil
	}
	res, err := a.writeObjects(r, org, []map[string]any{eventObject(fe.Name, st, ts, attrs, meta)})
	if err != nil {
		return nil, err
	}
	return hookAnswer{Message: "success", Events: res}, nil
}

// rolloutNotification is the body of the webhook template shipped in
// examples/argo-rollouts (an Argo Rollouts notifications "webhook" service).
type rolloutNotification struct {
	Rollout   string          `json:"rollout"`
	Namespace string          `json:"namespace"`
	Trigger   string          `json:"trigger"`
	Phase     string          `json:"phase"`
	Step      json.RawMessage `json:"step"`
	Weight    json.RawMessage `json:"weight"`
	Revision  string          `json:"revision"`
	Message   string          `json:"message"`
}

// rolloutOutcomes maps the notification triggers and phases that end a
// rollout to its outcome.
func rolloutOutcome(n rolloutNotification) string {
	switch n.Trigger {
	case "on-rollout-completed":
		return "completed"
	case "on-rollout-aborted":
		return "aborted"
	}
	switch strings.ToLower(n.Phase) {
	case "healthy":
		return "completed"
	case "degraded":
		return "degraded"
	}
	return ""
}

// argoRolloutsHook receives Argo Rollouts notifications: while a rollout
// progresses, the event <rollout> is open (labels rollout, namespace), and
// so is one stage event <rollout>-<weight> (labels rollout, namespace,
// weight) for the current canary weight, the previous stage being stopped
// when the weight changes; when the rollout completes or aborts, every open
// event of it stops with outcome and phase.
func (a *eventsAPI) argoRolloutsHook(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	var n rolloutNotification
	if err := decodeHook(r, "rollout notification", &n); err != nil {
		return nil, err
	}
	if n.Rollout == "" || n.Namespace == "" {
		return nil, errorf(http.StatusBadRequest, `rollout notification: fields "rollout" and "namespace" are required; accepted: the JSON of the template in examples/argo-rollouts`)
	}
	weight, err := scalarString(n.Weight)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, fmt.Sprintf("rollout notification: field \"weight\" value %s is not accepted; accepted: a number, a numeric string or empty", n.Weight))
	}
	step, _ := scalarString(n.Step)
	ts := a.now().UnixMilli()
	base := map[string]string{"rollout": n.Rollout, "namespace": n.Namespace}
	meta := map[string]any{"source": "argo-rollouts", "trigger": n.Trigger, "phase": n.Phase}
	if n.Revision != "" {
		meta["revision"] = n.Revision
	}
	if n.Message != "" {
		meta["message"] = n.Message
	}
	if step != "" {
		meta["step"] = step
	}

	open, err := a.openOf(r, org, n.Rollout, base)
	if err != nil {
		return nil, err
	}
	var objs []map[string]any
	if outcome := rolloutOutcome(n); outcome != "" {
		for _, e := range open {
			attrs := copyAttrs(e.Labels)
			attrs["outcome"], attrs["phase"] = outcome, strings.ToLower(n.Phase)
			objs = append(objs, eventObject(e.Name, events.StateStop, ts, attrs, meta))
		}
		if len(objs) == 0 {
			return hookAnswer{Message: "ignored", Reason: "the rollout has no open events to end"}, nil
		}
	} else {
		rolloutOpen := false
		stage := ""
		if weight != "" {
			stage = n.Rollout + "-" + weight
		}
		stageOpen := false
		for _, e := range open {
			switch e.Name {
			case n.Rollout:
				rolloutOpen = true
			case stage:
				stageOpen = true
			default:
				if stage != "" { // The weight changed: the previous stage ends.
					objs = append(objs, eventObject(e.Name, events.StateStop, ts, copyAttrs(e.Labels), meta))
				}
			}
		}
		if !rolloutOpen {
			objs = append(objs, eventObject(n.Rollout, events.StateStart, ts, base, meta))
		}
		if stage != "" && !stageOpen {
			attrs := copyAttrs(base)
			attrs["weight"] = weight
			objs = append(objs, eventObject(stage, events.StateStart, ts, attrs, meta))
		}
		if len(objs) == 0 {
			return hookAnswer{Message: "ignored", Reason: "the rollout's events are already open"}, nil
		}
	}
	res, err := a.writeObjects(r, org, objs)
	if err != nil {
		return nil, err
	}
	return hookAnswer{Message: "success", Events: res}, nil
}

// openOf returns the open events of a rollout: <rollout> and its stages.
func (a *eventsAPI) openOf(r *http.Request, org, rollout string, base map[string]string) ([]events.Logged, error) {
	ms := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchRegexp, "event_name", regexp.QuoteMeta(rollout)+"(-.+)?"),
		labels.MustNewMatcher(labels.MatchEqual, "event_state", string(events.StateStart)),
	}
	for k, v := range base {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, k, v))
	}
	since := a.now().Add(-a.svc.MaxDuration()).UnixMilli()
	res, err := a.svc.List(r.Context(), events.ListQuery{Org: org, Start: since, End: a.now().UnixMilli() + 1, Matchers: ms, Limit: maxListLimit})
	if err != nil {
		return nil, err
	}
	var open []events.Logged
	for _, e := range res.Events {
		if e.Open {
			open = append(open, e)
		}
	}
	return open, nil
}

func copyAttrs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// scalarString renders a JSON number or string (or null) as a string.
func scalarString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return "", nil
		}
		if _, err := json.Number(s).Float64(); err != nil {
			return "", fmt.Errorf("not numeric")
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", err
	}
	return n.String(), nil
}
