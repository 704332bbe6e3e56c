package sources

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/tidemark/tidemark/events"
)

// RolloutNotification is the body of the webhook template shipped in
// examples/argo-rollouts (an Argo Rollouts notifications "webhook"
// service).
type RolloutNotification struct {
	Rollout   string `json:"rollout"`
	Namespace string `json:"namespace"`
	Trigger   string `json:"trigger"`
	Phase     string `json:"phase"`
	Revision  string `json:"revision"`
	Message   string `json:"message"`
	// Step and Weight are numbers or numeric strings; ParseRolloutNotification
	// renders them as strings (empty when absent).
	Step   string `json:"-"`
	Weight string `json:"-"`
}

const rolloutSource = "rollout notification"

// ParseRolloutNotification decodes and checks a notification.
func ParseRolloutNotification(body []byte) (RolloutNotification, error) {
	var raw struct {
		RolloutNotification
		Step   json.RawMessage `json:"step"`
		Weight json.RawMessage `json:"weight"`
	}
	if err := decodeJSON(rolloutSource, body, &raw); err != nil {
		return RolloutNotification{}, err
	}
	n := raw.RolloutNotification
	if n.Rollout == "" || n.Namespace == "" {
		return n, &PayloadError{Source: rolloutSource, Problem: `fields "rollout" and "namespace" are required`, Accepted: "the JSON of the template in examples/argo-rollouts"}
	}
	weight, err := scalarString(raw.Weight)
	if err != nil {
		return n, &PayloadError{Source: rolloutSource, Field: "weight", Value: string(raw.Weight), Problem: "is not accepted", Accepted: "a number, a numeric string or empty"}
	}
	n.Weight = weight
	n.Step, _ = scalarString(raw.Step)
	return n, nil
}

// OpenEvent is an event of the log that is open: a start whose stop has
// not come.
type OpenEvent struct {
	Name   string
	Labels map[string]string
}

// OpenSelector says which open events ArgoRollouts needs: those whose name
// matches the regular expression (the rollout and its stages) and that have
// the labels.
func (n RolloutNotification) OpenSelector() (nameRegexp string, labels map[string]string) {
	return regexp.QuoteMeta(n.Rollout) + "(-.+)?", n.baseLabels()
}

func (n RolloutNotification) baseLabels() map[string]string {
	return map[string]string{"rollout": n.Rollout, "namespace": n.Namespace}
}

// rolloutOutcome maps the notification triggers and phases that end a
// rollout to its outcome.
func rolloutOutcome(n RolloutNotification) string {
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

// ArgoRollouts converts an Argo Rollouts notification, given the rollout's
// open events (OpenSelector): while a rollout progresses, the event
// <rollout> is open (labels rollout, namespace), and so is one stage event
// <rollout>-<weight> (labels rollout, namespace, weight) for the current
// canary weight, the previous stage being stopped when the weight changes;
// when the rollout completes or aborts, every open event of it stops with
// outcome and phase.
func ArgoRollouts(n RolloutNotification, open []OpenEvent) (Conversion, error) {
	base := n.baseLabels()
	meta := metadata(map[string]any{"source": "argo-rollouts", "trigger": n.Trigger, "phase": n.Phase,
		"revision": n.Revision, "message": n.Message, "step": n.Step})
	event := func(name string, st events.State, attrs map[string]string) events.Input {
		return events.Input{Name: name, State: st, Attributes: attrs, Metadata: meta}
	}
	open = append([]OpenEvent(nil), open...)
	sort.SliceStable(open, func(i, j int) bool { return open[i].Name < open[j].Name })

	var out []events.Input
	if outcome := rolloutOutcome(n); outcome != "" {
		for _, e := range open {
			attrs := copyLabels(e.Labels)
			attrs["outcome"], attrs["phase"] = outcome, strings.ToLower(n.Phase)
			out = append(out, event(e.Name, stop, attrs))
		}
		if len(out) == 0 {
			return ignored("the rollout has no open events to end")
		}
		return Conversion{Events: out}, nil
	}
	rolloutOpen, stageOpen := false, false
	stage := ""
	if n.Weight != "" {
		stage = n.Rollout + "-" + n.Weight
	}
	for _, e := range open {
		switch e.Name {
		case n.Rollout:
			rolloutOpen = true
		case stage:
			stageOpen = true
		default:
			if stage != "" { // The weight changed: the previous stage ends.
				out = append(out, event(e.Name, stop, copyLabels(e.Labels)))
			}
		}
	}
	if !rolloutOpen {
		out = append(out, event(n.Rollout, start, base))
	}
	if stage != "" && !stageOpen {
		attrs := copyLabels(base)
		attrs["weight"] = n.Weight
		out = append(out, event(stage, start, attrs))
	}
	if len(out) == 0 {
		return ignored("the rollout's events are already open")
	}
	return Conversion{Events: out}, nil
}

func copyLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// scalarString renders a JSON number or numeric string (or null) as a
// string.
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
