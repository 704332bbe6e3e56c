package sources

import (
	"encoding/json"
	"strings"

	"github.com/tidemark/tidemark/events"
)

// unleashEvent is an Unleash event, as Unleash's webhook integration sends
// it when no body template is set.
type unleashEvent struct {
	ID          json.Number     `json:"id"`
	Type        string          `json:"type"`
	CreatedBy   string          `json:"createdBy"`
	CreatedAt   string          `json:"createdAt"`
	FeatureName string          `json:"featureName"`
	Project     string          `json:"project"`
	Environment string          `json:"environment"`
	Data        json.RawMessage `json:"data"`
	PreData     json.RawMessage `json:"preData"`
	Tags        []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"tags"`
}

// Unleash converts an event of Unleash's webhook integration. A feature
// event (type feature-*, with a featureName: a flag turned on or off in an
// environment, a strategy added, changed or removed, variants changed, a
// flag created or archived) becomes a point event "flag-change" labelled
// flag (the feature's name), project, env (when the event is about one
// environment) and action (the event type); who made it, its tags and its
// data and preData go to metadata. Other events are ignored. Event ids
// come from Unleash's event id, so a redelivery is stored once.
func Unleash(body []byte) (Conversion, error) {
	const source = "unleash event"
	var e unleashEvent
	if err := decodeJSON(source, body, &e); err != nil {
		return Conversion{}, err
	}
	switch {
	case e.ID == "":
		return Conversion{}, missing(source, "id", "the event's id, as Unleash's webhook sends it without a body template")
	case e.Type == "":
		return Conversion{}, missing(source, "type", "the event type, e.g. feature-environment-enabled")
	case !strings.HasPrefix(e.Type, "feature-") || e.FeatureName == "":
		return ignored("event %q is not about a feature flag", e.Type)
	}
	ts, err := vendorTime(source, "createdAt", e.CreatedAt)
	if err != nil {
		return Conversion{}, err
	}
	meta := map[string]any{"source": "unleash", "createdBy": e.CreatedBy, "data": e.Data, "preData": e.PreData}
	if len(e.Tags) > 0 {
		tags := make([]string, 0, len(e.Tags))
		for _, t := range e.Tags {
			tags = append(tags, t.Type+":"+t.Value)
		}
		meta["tags"] = tags
	}
	return Conversion{Events: []events.Input{{
		ID:   "unleash-" + e.ID.String() + "-" + e.Type + "-" + e.FeatureName,
		Name: "flag-change", State: start, Time: ts,
		Attributes: labelsOf("flag", e.FeatureName, "project", e.Project, "env", e.Environment, "action", e.Type),
		Metadata:   metadata(meta),
	}}}, nil
}
