// Package sources turns the payloads of the tools that cause changes into
// change events: Argo Rollouts notifications, Flagger's event webhook,
// Grafana annotations, GitHub and GitLab deployments, LaunchDarkly and
// Unleash flag changes, and any JSON webhook through a configured mapping
// (generic.go). One file per source.
//
// Every conversion is a pure function of the payload (and, for Argo
// Rollouts, of the rollout's open events, which the caller looks up): no
// I/O, no clock. It returns events.Input values, which the caller validates
// with events.ValidateAll and writes; an event without a time is dated when
// it is received. A payload that cannot become an event is a *PayloadError;
// a valid payload that is not a change (a deployment still queued, a ping)
// is a Conversion with no events and the reason. Unknown fields are ignored
// everywhere but in Grafana annotations, whose body Tidemark defines.
//
// The labels are the ones impact scoring and alert context match on
// (service, env, namespace) plus what identifies the change (repo,
// version, flag), and event ids come from the vendor's ids, so a
// redelivered webhook is stored once.
package sources

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tidemark/tidemark/events"
)

// Conversion is what a payload becomes.
type Conversion struct {
	Events []events.Input
	// Ignored says why a valid payload became no event; empty when Events
	// is not.
	Ignored string
}

func ignored(format string, args ...any) (Conversion, error) {
	return Conversion{Ignored: fmt.Sprintf(format, args...)}, nil
}

// PayloadError is a payload that cannot become an event. It names the
// source, the field and what would be accepted; the HTTP layer answers it
// with 400.
type PayloadError struct {
	// Source names the payload, e.g. "github deployment_status".
	Source string
	// Field is the field's path in the payload; empty: the payload as a
	// whole, or several fields named in Problem.
	Field    string
	Value    string
	Problem  string
	Accepted string
}

func (e *PayloadError) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	b.WriteString(": ")
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q ", e.Field)
		if e.Value != "" {
			fmt.Fprintf(&b, "value %s ", e.Value)
		}
	}
	b.WriteString(e.Problem)
	if e.Accepted != "" {
		b.WriteString("; accepted: ")
		b.WriteString(e.Accepted)
	}
	return b.String()
}

// missing is the error of a required field that the payload lacks.
func missing(source, field, accepted string) error {
	return &PayloadError{Source: source, Field: field, Problem: "is missing", Accepted: accepted}
}

// decodeJSON decodes a payload, ignoring unknown fields.
func decodeJSON(source string, body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return &PayloadError{Source: source, Problem: "the body is not the expected JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	return nil
}

// metadata renders the metadata of an event, leaving out empty values.
func metadata(m map[string]any) json.RawMessage {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case string:
			if v == "" {
				delete(m, k)
			}
		case json.RawMessage:
			if len(v) == 0 || string(v) == "null" {
				delete(m, k)
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil { // Not reached: the values are strings, numbers and JSON.
		return nil
	}
	return b
}

// labelsOf returns the labels that have a value.
func labelsOf(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

// links returns the links that have an address, as text, href pairs.
func links(textHref ...string) []events.Link {
	var out []events.Link
	for i := 0; i+1 < len(textHref); i += 2 {
		if textHref[i+1] != "" {
			out = append(out, events.Link{Text: textHref[i], Href: textHref[i+1]})
		}
	}
	return out
}

// vendorTimeLayouts are the time forms vendors send beside those of the
// change-events API: GitLab's "2021-04-28 21:50:00 +0200" and the same
// with a zone name ("... UTC").
var vendorTimeLayouts = []string{"2006-01-02 15:04:05.999999999 -0700", "2006-01-02 15:04:05.999999999 MST"}

// vendorTime parses a time a payload gives: the forms of the change-events
// API (RFC 3339, epoch seconds or milliseconds) or vendorTimeLayouts.
// Empty is 0: the time it is received.
func vendorTime(source, field, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	for _, l := range vendorTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	ms, err := events.ParseTimestamp(s)
	if err != nil {
		return 0, &PayloadError{Source: source, Field: field, Value: fmt.Sprintf("%q", s), Problem: "is not a time: " + err.Error(), Accepted: `an RFC 3339 time, epoch seconds or milliseconds, or "2006-01-02 15:04:05 -0700"`}
	}
	return ms, nil
}

// start and stop are the states of events.Input.
const (
	start = events.StateStart
	stop  = events.StateStop
)
