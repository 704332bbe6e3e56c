package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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

// Decode parses a request body holding one change event (a JSON object) or a
// JSON array of them, and validates them with Validate. now is the time the
// request was received: the default event time, and the reference for the
// backfill window. Every error is an *InputError; on error nothing is
// returned.
func Decode(body []byte, now time.Time, lim Limits) ([]Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &InputError{Index: -1, Problem: "the request body is empty", Accepted: "one change event as a JSON object, or a JSON array of them"}
	}
	if body[0] == '[' {
		var raws []json.RawMessage
		if err := unmarshalRaw(body, &raws); err != nil {
			return nil, &InputError{Index: -1, Problem: "the body is not a JSON array of objects: " + jsonProblem(err), Accepted: "one change event as a JSON object, or a JSON array of them"}
		}
		ins := make([]Input, len(raws))
		for i, raw := range raws {
			ins[i] = DecodeInput(raw)
		}
		return ValidateAll(ins, now, lim)
	}
	ev, err := Validate(DecodeInput(body), -1, now, lim)
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

// unmarshalRaw is strictUnmarshal for targets that keep raw values
// (json.RawMessage, and slices and maps of it), whose numbers stay as
// written anyway: it decodes in place, without a Decoder's buffer.
func unmarshalRaw(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	var se *json.SyntaxError
	if errors.As(err, &se) && strings.HasSuffix(se.Error(), "after top-level value") {
		return errors.New("unexpected data after the JSON value")
	}
	return err
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

// DecodeInput parses one change event in the API's JSON form. It never
// fails: what is wrong with the JSON is kept in the input and reported by
// Validate, in the order Validate checks the fields, so that an event's
// first problem is named the same way whether it came as JSON or as an
// Input.
func DecodeInput(raw json.RawMessage) Input {
	src := &jsonSource{raw: map[string]json.RawMessage{}, bad: map[string]*InputError{}}
	in := Input{src: src}
	whole := func(problem, accepted string) Input {
		src.whole = &InputError{Index: -1, Problem: problem, Accepted: accepted}
		return in
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return whole("a change event must be a JSON object, got "+quote(raw), "an object with at least event_name")
	}
	var fields map[string]json.RawMessage
	if err := unmarshalRaw(raw, &fields); err != nil {
		return whole("the event is not valid JSON: "+jsonProblem(err), "an object with at least event_name")
	}
	var unknown []string
	for k := range fields {
		if !knownFields[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		src.whole = &InputError{Index: -1, Field: unknown[0], Problem: "unknown field", Accepted: acceptedFields + " (attributes for anything else)"}
		return in
	}
	in.Raw = append(json.RawMessage(nil), raw...)
	// bad records a type error of a field; Validate reports it.
	bad := func(field string, value []byte, problem, accepted string) {
		e := &InputError{Index: -1, Field: field, Problem: problem, Accepted: accepted}
		if value != nil {
			e.Value = quote(value)
		}
		src.bad[field] = e
	}
	present := func(k string) (json.RawMessage, bool) {
		v, ok := fields[k]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil, false
		}
		src.raw[k] = v
		return v, true
	}

	if v, ok := present("event_name"); ok {
		if err := json.Unmarshal(v, &in.Name); err != nil {
			bad("event_name", v, "not a non-empty string", "a non-empty string")
		}
	}
	if v, ok := present("event_state"); ok {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			bad("event_state", v, "is not a state", `"start" or "stop"`)
		} else if s == "" {
			bad("event_state", v, "is not a state", `"start" or "stop"`)
		}
		in.State = State(s)
	}
	if v, ok := present("timestamp"); ok {
		ts, err := decodeTimestamp(v)
		if err != nil {
			bad("timestamp", v, "is not a time: "+err.Error(), acceptedTimestamps)
		}
		in.Time = ts
	}
	if v, ok := present("value"); ok {
		var n json.Number
		if c := bytes.TrimSpace(v)[0]; c == '"' || json.Unmarshal(v, &n) != nil {
			bad("value", v, "is not a number", "a JSON number")
		} else if f, err := n.Float64(); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			bad("value", v, "is not a finite number", "a JSON number")
		} else {
			in.Value = &f
		}
	}
	if v, ok := present("id"); ok {
		if err := json.Unmarshal(v, &in.ID); err != nil {
			bad("id", v, "is not a non-empty string", "") // Validate names the limit.
		}
	}
	if v, ok := present("attributes"); ok {
		var attrs map[string]json.RawMessage
		if err := strictUnmarshal(v, &attrs); err != nil || bytes.TrimSpace(v)[0] != '{' {
			bad("attributes", v, "is not an object", "an object of string, number or bool values")
		} else {
			in.Attributes = make(map[string]string, len(attrs))
			for name, av := range attrs {
				field := "attributes." + name
				src.raw[field] = av
				s, err := labelValue(av)
				if err != nil {
					bad(field, av, err.Error(), "a string, number or bool")
				}
				in.Attributes[name] = s
			}
		}
	}
	for _, name := range LegacyLabelFields {
		v, ok := present(name)
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			bad(name, v, "is not a string", "a string")
			continue
		}
		if in.Legacy == nil {
			in.Legacy = map[string]string{}
		}
		in.Legacy[name] = s
	}
	if v, ok := present("metadata"); ok {
		in.Metadata = v
	}
	if v, ok := present("links"); ok {
		var rawLinks []json.RawMessage
		if err := strictUnmarshal(v, &rawLinks); err != nil || bytes.TrimSpace(v)[0] != '[' {
			bad("links", v, "is not an array", `an array of {"href": "...", "text": "..."}`)
		} else {
			for i, rl := range rawLinks {
				field := fmt.Sprintf("links[%d]", i)
				src.raw[field] = rl
				var l Link
				dec := json.NewDecoder(bytes.NewReader(rl))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&l); err != nil {
					bad(field, rl, "is not a link", `{"href": "<non-empty URL>", "text": "<optional>"}`)
					in.Links = append(in.Links, Link{})
					break // The first bad link is the one reported.
				}
				in.Links = append(in.Links, l)
			}
		}
	}
	return in
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
	case strings.ContainsRune(s, 0):
		return "contains a NUL character"
	}
	return ""
}
