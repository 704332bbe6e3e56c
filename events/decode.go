package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// Limits bound what Decode accepts.
type Limits struct {
	// MaxBatch is the most events one request may carry.
	MaxBatch int
	// MaxLabels is the most labels (attributes and legacy fields) an event may have.
	MaxLabels int
	// MaxValueBytes is the longest label value, event name or id.
	MaxValueBytes int
	// Backfill is how far in the past an event may be.
	Backfill time.Duration
	// Future is how far in the future an event may be (clock skew).
	Future time.Duration
}

// DefaultLimits are the limits DESIGN.md gives.
var DefaultLimits = Limits{
	MaxBatch:      1000,
	MaxLabels:     32,
	MaxValueBytes: 1024,
	Backfill:      7 * 24 * time.Hour,
	Future:        10 * time.Minute,
}

// InputError is a rejected request: it names the event (in a batch), the
// field, the value and what would be accepted.
type InputError struct {
	// Index is the event's position in a batch, or -1 for a single event.
	Index    int
	Field    string
	Value    string
	Problem  string
	Accepted string
}

func (e *InputError) Error() string {
	var b strings.Builder
	if e.Index >= 0 {
		fmt.Fprintf(&b, "event %d: ", e.Index)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q", e.Field)
		if e.Value != "" {
			fmt.Fprintf(&b, " value %s", e.Value)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	if e.Accepted != "" {
		b.WriteString("; accepted: ")
		b.WriteString(e.Accepted)
	}
	if e.Index >= 0 {
		b.WriteString(" (nothing of this batch was written)")
	}
	return b.String()
}

// LegacyLabelFields are the top-level fields that become labels, as in the
// Levitate API.
var LegacyLabelFields = []string{"workspace", "namespace", "entity_type", "data_source_name"}

var knownFields = map[string]bool{
	"event_name": true, "event_state": true, "timestamp": true, "attributes": true,
	"value": true, "id": true, "metadata": true, "links": true,
	"workspace": true, "namespace": true, "entity_type": true, "data_source_name": true,
}

const acceptedFields = "event_name, event_state, timestamp, attributes, value, id, metadata, links, workspace, namespace, entity_type, data_source_name"

// Label names that attributes cannot use: they are set by Tidemark.
var reservedLabels = map[string]bool{labels.MetricName: true, "event_name": true, "event_state": true}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Decode parses a request body holding one change event (a JSON object) or a
// JSON array of them. now is the time the request was received: the default
// event time, and the reference for the backfill window. Every error is an
// *InputError; on error nothing is returned.
func Decode(body []byte, now time.Time, lim Limits) ([]Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &InputError{Index: -1, Problem: "the request body is empty", Accepted: "one change event as a JSON object, or a JSON array of them"}
	}
	if body[0] == '[' {
		var raws []json.RawMessage
		if err := strictUnmarshal(body, &raws); err != nil {
			return nil, &InputError{Index: -1, Problem: "the body is not a JSON array of objects: " + jsonProblem(err), Accepted: "one change event as a JSON object, or a JSON array of them"}
		}
		if len(raws) == 0 {
			return nil, &InputError{Index: -1, Problem: "the array is empty", Accepted: "1 to " + strconv.Itoa(lim.MaxBatch) + " events"}
		}
		if len(raws) > lim.MaxBatch {
			return nil, &InputError{Index: -1, Problem: fmt.Sprintf("the batch has %d events, more than the limit", len(raws)), Accepted: "at most " + strconv.Itoa(lim.MaxBatch) + " events per request (--events.max-batch)"}
		}
		evs := make([]Event, 0, len(raws))
		for i, raw := range raws {
			ev, err := decodeOne(raw, i, now, lim)
			if err != nil {
				return nil, err
			}
			evs = append(evs, ev)
		}
		return evs, nil
	}
	ev, err := decodeOne(body, -1, now, lim)
	if err != nil {
		return nil, err
	}
	return []Event{ev}, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

func jsonProblem(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// quote renders a raw JSON value for an error message, shortened.
func quote(raw []byte) string {
	s := string(raw)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	if !utf8.ValidString(s) {
		s = strconv.Quote(s)
	}
	return s
}

func decodeOne(raw json.RawMessage, idx int, now time.Time, lim Limits) (Event, error) {
	fail := func(field string, value []byte, problem, accepted string) (Event, error) {
		e := &InputError{Index: idx, Field: field, Problem: problem, Accepted: accepted}
		if value != nil {
			e.Value = quote(value)
		}
		return Event{}, e
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return fail("", nil, "a change event must be a JSON object, got "+quote(raw), "an object with at least event_name")
	}
	var fields map[string]json.RawMessage
	if err := strictUnmarshal(raw, &fields); err != nil {
		return fail("", nil, "the event is not valid JSON: "+jsonProblem(err), "an object with at least event_name")
	}
	var unknown []string
	for k := range fields {
		if !knownFields[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fail(unknown[0], nil, "unknown field", acceptedFields+" (attributes for anything else)")
	}
	present := func(k string) (json.RawMessage, bool) {
		v, ok := fields[k]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil, false
		}
		return v, true
	}
	ev := Event{Raw: append(json.RawMessage(nil), raw...)}

	// event_name
	v, ok := present("event_name")
	if !ok {
		return fail("event_name", nil, "missing", "a non-empty string")
	}
	if err := json.Unmarshal(v, &ev.Name); err != nil || ev.Name == "" {
		return fail("event_name", v, "not a non-empty string", "a non-empty string")
	}
	if len(ev.Name) > lim.MaxValueBytes || !utf8.ValidString(ev.Name) {
		return fail("event_name", v, "too long or not UTF-8", fmt.Sprintf("at most %d bytes of UTF-8", lim.MaxValueBytes))
	}

	// event_state
	ev.State = StateStart
	if v, ok := present("event_state"); ok {
		var s string
		if err := json.Unmarshal(v, &s); err != nil || (State(s) != StateStart && State(s) != StateStop) {
			return fail("event_state", v, "is not a state", `"start" or "stop"`)
		}
		ev.State = State(s)
	}

	// timestamp
	ev.Time = now.UnixMilli()
	if v, ok := present("timestamp"); ok {
		ts, err := decodeTimestamp(v)
		if err != nil {
			return fail("timestamp", v, "is not a time: "+err.Error(), acceptedTimestamps)
		}
		if oldest := now.Add(-lim.Backfill).UnixMilli(); ts < oldest {
			return fail("timestamp", v, fmt.Sprintf("is older than the backfill window of %s", model.Duration(lim.Backfill)),
				"times after "+time.UnixMilli(oldest).UTC().Format(time.RFC3339)+" (--events.backfill-window)")
		}
		if newest := now.Add(lim.Future).UnixMilli(); ts > newest {
			return fail("timestamp", v, fmt.Sprintf("is more than %s in the future", model.Duration(lim.Future)),
				"times before "+time.UnixMilli(newest).UTC().Format(time.RFC3339))
		}
		ev.Time = ts
	}

	// value
	ev.Value = 1
	if ev.State == StateStop {
		ev.Value = 2
	}
	if v, ok := present("value"); ok {
		var n json.Number
		if c := bytes.TrimSpace(v)[0]; c == '"' || json.Unmarshal(v, &n) != nil {
			return fail("value", v, "is not a number", "a JSON number")
		}
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fail("value", v, "is not a finite number", "a JSON number")
		}
		ev.Value = f
	}

	// id
	if v, ok := present("id"); ok {
		if err := json.Unmarshal(v, &ev.ID); err != nil || ev.ID == "" {
			return fail("id", v, "is not a non-empty string", "a string of at most "+strconv.Itoa(lim.MaxValueBytes)+" bytes")
		}
		if len(ev.ID) > lim.MaxValueBytes || !utf8.ValidString(ev.ID) {
			return fail("id", v, "is too long or not UTF-8", "a string of at most "+strconv.Itoa(lim.MaxValueBytes)+" bytes")
		}
	}

	// labels: attributes, then the legacy top-level fields.
	lbls := map[string]string{}
	if v, ok := present("attributes"); ok {
		var attrs map[string]json.RawMessage
		if err := strictUnmarshal(v, &attrs); err != nil || bytes.TrimSpace(v)[0] != '{' {
			return fail("attributes", v, "is not an object", "an object of string, number or bool values")
		}
		for name, av := range attrs {
			field := "attributes." + name
			if !labelNameRE.MatchString(name) || strings.HasPrefix(name, "__") {
				return fail(field, nil, "is not a valid label name", "names matching [a-zA-Z_][a-zA-Z0-9_]* not starting with __")
			}
			if reservedLabels[name] {
				return fail(field, nil, "is reserved", "any other label name; event_name and event_state are set from the top-level fields")
			}
			s, err := labelValue(av)
			if err != nil {
				return fail(field, av, err.Error(), "a string, number or bool")
			}
			if msg := checkValue(s, lim); msg != "" {
				return fail(field, av, msg, fmt.Sprintf("a non-empty value of at most %d bytes of UTF-8", lim.MaxValueBytes))
			}
			lbls[name] = s
		}
	}
	for _, name := range LegacyLabelFields {
		v, ok := present(name)
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return fail(name, v, "is not a string", "a string")
		}
		if msg := checkValue(s, lim); msg != "" {
			return fail(name, v, msg, fmt.Sprintf("a non-empty value of at most %d bytes of UTF-8", lim.MaxValueBytes))
		}
		if prev, dup := lbls[name]; dup && prev != s {
			return fail(name, v, fmt.Sprintf("conflicts with attributes.%s %q", name, prev), "the same value in both places, or only one of them")
		}
		lbls[name] = s
	}
	if len(lbls) > lim.MaxLabels {
		return fail("attributes", nil, fmt.Sprintf("the event has %d labels", len(lbls)), fmt.Sprintf("at most %d labels (attributes and the fields %s together)", lim.MaxLabels, strings.Join(LegacyLabelFields, ", ")))
	}
	ev.Labels = labels.FromMap(lbls)

	// metadata and links: kept in the log only.
	ev.Metadata = json.RawMessage("{}")
	if v, ok := present("metadata"); ok {
		var m map[string]json.RawMessage
		if err := strictUnmarshal(v, &m); err != nil || bytes.TrimSpace(v)[0] != '{' {
			return fail("metadata", v, "is not an object", "a JSON object (any values)")
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return fail("metadata", v, "is not an object", "a JSON object (any values)")
		}
		ev.Metadata = buf.Bytes()
	}
	if v, ok := present("links"); ok {
		var rawLinks []json.RawMessage
		if err := strictUnmarshal(v, &rawLinks); err != nil || bytes.TrimSpace(v)[0] != '[' {
			return fail("links", v, "is not an array", `an array of {"href": "...", "text": "..."}`)
		}
		for i, rl := range rawLinks {
			var l Link
			dec := json.NewDecoder(bytes.NewReader(rl))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&l); err != nil || l.Href == "" {
				return fail(fmt.Sprintf("links[%d]", i), rl, "is not a link", `{"href": "<non-empty URL>", "text": "<optional>"}`)
			}
			ev.Links = append(ev.Links, l)
		}
	}
	return ev, nil
}

func decodeTimestamp(v json.RawMessage) (int64, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return ParseTimestamp(s)
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, fmt.Errorf("neither a string nor a number")
	}
	f, err := n.Float64()
	if err != nil {
		return 0, fmt.Errorf("not a number")
	}
	return EpochToMillis(f)
}

// labelValue renders a string, number or bool attribute as a label value.
// Numbers are written in their shortest decimal form, so 20 and 20.0 are
// the same label.
func labelValue(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", errors.New("is empty")
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", errors.New("is not a valid string")
		}
		return s, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return "", errors.New("is not a string, number or bool")
		}
		return strconv.FormatBool(b), nil
	case 'n', '{', '[':
		return "", errors.New("is not a string, number or bool")
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return "", errors.New("is not a string, number or bool")
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) {
		return "", errors.New("is not a finite number")
	}
	return strconv.FormatFloat(f, 'f', -1, 64), nil
}

func checkValue(s string, lim Limits) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > lim.MaxValueBytes:
		return fmt.Sprintf("is %d bytes long", len(s))
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	return ""
}
