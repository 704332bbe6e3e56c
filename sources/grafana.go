package sources

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/tidemark/tidemark/events"
)

// GrafanaAnnotation is the body of Grafana's POST /api/annotations.
type GrafanaAnnotation struct {
	DashboardUID string   `json:"dashboardUID,omitempty"`
	DashboardID  int64    `json:"dashboardId,omitempty"`
	PanelID      int64    `json:"panelId,omitempty"`
	Time         int64    `json:"time,omitempty"`
	TimeEnd      int64    `json:"timeEnd,omitempty"`
	IsRegion     bool     `json:"isRegion,omitempty"`
	Tags         []string `json:"tags"`
	Text         string   `json:"text"`
	Data         any      `json:"data,omitempty"`
}

// DefaultAnnotationName names an annotation that has no tag to name it.
const DefaultAnnotationName = "annotation"

const annotationSource = "annotation"

// SplitTag returns key and value of a "key:value" tag whose key is a valid
// label name; ok is false for a plain tag.
func SplitTag(tag string) (key, value string, ok bool) {
	k, v, found := strings.Cut(tag, ":")
	if !found || v == "" || !model.LegacyValidation.IsValidLabelName(k) || strings.HasPrefix(k, "__") {
		return "", "", false
	}
	return k, v, true
}

// Grafana converts an annotation (docs/sources.md, "Grafana annotations"):
//   - tags "key:value" become attributes; the event name is the value of a
//     tag "event_name:NAME", else the first plain tag, else "annotation";
//   - the other plain tags and text, dashboardUID, panelId go to metadata;
//   - time is the start (now when absent); a timeEnd after time also
//     writes the stop.
//
// The body is Tidemark's own API, so unknown fields are refused.
func Grafana(body []byte, now time.Time) (Conversion, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var an GrafanaAnnotation
	if err := dec.Decode(&an); err != nil {
		return Conversion{}, &PayloadError{Source: annotationSource, Problem: strings.TrimPrefix(err.Error(), "json: "),
			Accepted: "Grafana's annotation fields time, timeEnd, tags, text, dashboardUID, dashboardId, panelId, isRegion, data"}
	}
	if an.Time == 0 {
		an.Time = now.UnixMilli()
	}
	if an.TimeEnd != 0 && an.TimeEnd < an.Time {
		return Conversion{}, &PayloadError{Source: annotationSource, Field: "timeEnd", Value: fmt.Sprint(an.TimeEnd),
			Problem: fmt.Sprintf("is before \"time\" %d", an.Time), Accepted: "a time in epoch milliseconds at or after time"}
	}
	name := ""
	attrs := map[string]string{}
	var plain []string
	for _, tag := range an.Tags {
		if k, v, ok := SplitTag(tag); ok {
			if k == "event_name" {
				name = v
				continue
			}
			attrs[k] = v
			continue
		}
		plain = append(plain, tag)
	}
	if name == "" && len(plain) > 0 {
		name, plain = plain[0], plain[1:]
	}
	if name == "" {
		name = DefaultAnnotationName
	}
	m := map[string]any{"source": "grafana-annotation", "text": an.Text, "dashboardUID": an.DashboardUID}
	if len(plain) > 0 {
		m["tags"] = plain
	}
	if an.PanelID != 0 {
		m["panelId"] = an.PanelID
	}
	meta := metadata(m)
	out := []events.Input{{Name: name, State: start, Time: an.Time, Attributes: attrs, Metadata: meta}}
	if an.TimeEnd > an.Time {
		out = append(out, events.Input{Name: name, State: stop, Time: an.TimeEnd, Attributes: attrs, Metadata: meta})
	}
	return Conversion{Events: out}, nil
}
