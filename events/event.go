// Package events turns change events into series and log rows.
//
// An event is decoded and validated (decode.go), deduplicated and paired with
// its start or stop by the single writer loop (writer.go, pairing.go), written
// to the event log and the organization's TSDB in an order that survives a
// crash (writer.go), and turned into the series DESIGN.md specifies
// (series.go).
package events

import (
	"encoding/json"

	"github.com/prometheus/prometheus/model/labels"
)

// State is the state of a change event.
type State string

// The event states.
const (
	StateStart State = "start"
	StateStop  State = "stop"
)

// Link is a link kept with an event in the event log.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Event is one decoded, validated change event.
type Event struct {
	// ID is the client's idempotency key; empty when none was given.
	ID    string
	Name  string
	State State
	// Time is the event's time in milliseconds since the epoch.
	Time int64
	// Value is the sample value of the point series: the client's value,
	// or 1 for a start and 2 for a stop.
	Value float64
	// Labels are the event's own labels (attributes and the legacy top-level
	// fields), without event_name and event_state.
	Labels   labels.Labels
	Metadata json.RawMessage
	Links    []Link
	// Raw is the event as it was received.
	Raw json.RawMessage
}
