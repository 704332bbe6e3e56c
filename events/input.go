package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/valyala/fastjson"
)

// Input is a change event as a client or a change source gives it, not yet
// validated: Decode parses the API's JSON into it, and the conversions of
// webhook payloads (package sources) build it directly. Validate turns it
// into an Event with the rules of the change-events API, so every way in
// accepts and refuses the same events with the same messages.
type Input struct {
	// ID is the idempotency key; empty: none (the log makes one).
	ID   string
	Name string
	// State is start or stop; empty: start.
	State State
	// Time is the event's time in milliseconds since the epoch; 0: the
	// time it was received.
	Time int64
	// Value is the sample value of the point series; nil: 1 for a start,
	// 2 for a stop.
	Value *float64
	// Attributes become the event's labels.
	Attributes map[string]string
	// Legacy holds Levitate's top-level label fields (LegacyLabelFields).
	// They are labels too; a value that differs from the attribute of the
	// same name is refused.
	Legacy map[string]string
	// Metadata is a JSON object kept in the event log only; nil: {}.
	Metadata json.RawMessage
	Links    []Link
	// Raw is the event as it was received (Decode keeps it without the
	// whitespace between tokens), kept in the event log; nil: the event in
	// the API's JSON form.
	Raw json.RawMessage

	// src is set when the input was decoded from JSON.
	src *jsonSource
}

// jsonSource is what decoding an event's JSON found beside the typed
// values: the value of every field present (for error messages, and to
// tell a field sent empty from one not sent), and the type errors,
// reported by Validate in the order it checks the fields, so that the
// first problem of an event is the one named whatever way it came in. An
// event has a handful of fields, so they are kept in slices.
type jsonSource struct {
	// whole is a problem with the event as a whole: not an object, not
	// JSON, an unknown field.
	whole *InputError
	// fields hold the JSON value of each field present and not null, by
	// field name ("event_name", "links[0]"), and attrs those of the
	// attributes ("attributes.k", by "k"); the values are the parser's,
	// valid while the request is decoded.
	fields, attrs []sourceField
	buf           [nFields]sourceField
	// bad holds the type errors of fields.
	bad []*InputError
}

type sourceField struct {
	name string
	v    *fastjson.Value
}

func (s *jsonSource) set(field string, v *fastjson.Value) {
	for i := range s.fields {
		if s.fields[i].name == field {
			s.fields[i].v = v
			return
		}
	}
	s.fields = append(s.fields, sourceField{field, v})
}

func (s *jsonSource) get(field string) *fastjson.Value {
	fields := s.fields
	if name, ok := strings.CutPrefix(field, "attributes."); ok {
		fields, field = s.attrs, name
	}
	for i := len(fields) - 1; i >= 0; i-- { // The last of a repeated key.
		if fields[i].name == field {
			return fields[i].v
		}
	}
	return nil
}

func (s *jsonSource) setBad(field string, e *InputError) {
	for i, b := range s.bad {
		if b.Field == field {
			s.bad[i] = e
			return
		}
	}
	s.bad = append(s.bad, e)
}

func (s *jsonSource) getBad(field string) *InputError {
	for _, b := range s.bad {
		if b.Field == field {
			return b
		}
	}
	return nil
}

// Validate checks one input against the rules of the change-events API and
// returns the event it is. index is the input's position in a batch, or -1
// for a single event; errors name it. now is when the event was received:
// the default time, and the reference of the backfill window. Every error
// is an *InputError.
func Validate(in Input, index int, now time.Time, lim Limits) (Event, error) {
	v := validator{in: &in, idx: index}
	return v.validate(now, lim)
}

// ValidateAll validates a batch of inputs as one request: at least one and
// at most lim.MaxBatch of them, every error naming its event's position. On
// error no event is returned.
func ValidateAll(ins []Input, now time.Time, lim Limits) ([]Event, error) {
	if len(ins) == 0 {
		return nil, &InputError{Index: -1, Problem: "the array is empty", Accepted: "1 to " + strconv.Itoa(lim.MaxBatch) + " events"}
	}
	if len(ins) > lim.MaxBatch {
		return nil, &InputError{Index: -1, Problem: fmt.Sprintf("the batch has %d events, more than the limit", len(ins)), Accepted: "at most " + strconv.Itoa(lim.MaxBatch) + " events per request (--events.max-batch)"}
	}
	evs := make([]Event, 0, len(ins))
	for i, in := range ins {
		ev, err := Validate(in, i, now, lim)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

type validator struct {
	in  *Input
	idx int
}

func (v *validator) fail(field, value, problem, accepted string) (Event, error) {
	return Event{}, &InputError{Index: v.idx, Field: field, Value: value, Problem: problem, Accepted: accepted}
}

// bad returns the type error decoding found for a field, naming the event.
func (v *validator) bad(field string) error {
	if v.in.src == nil {
		return nil
	}
	e := v.in.src.getBad(field)
	if e == nil {
		return nil
	}
	c := *e
	c.Index = v.idx
	return &c
}

// anyBad reports whether decoding found a type error in any field.
func (v *validator) anyBad() bool { return v.in.src != nil && len(v.in.src.bad) > 0 }

// sent reports whether the field was present (and not null) in the JSON.
func (v *validator) sent(field string) bool {
	if v.in.src == nil {
		return false
	}
	return v.in.src.get(field) != nil
}

// value renders a field's value for an error message: as it was received,
// or else as the JSON of the typed value.
func (v *validator) value(field string, typed any) string {
	if v.in.src != nil {
		if fv := v.in.src.get(field); fv != nil {
			return quote(fv.MarshalTo(nil))
		}
	}
	b, err := json.Marshal(typed)
	if err != nil {
		return fmt.Sprint(typed)
	}
	return quote(b)
}

func (v *validator) validate(now time.Time, lim Limits) (Event, error) {
	in := v.in
	if in.src != nil && in.src.whole != nil {
		e := *in.src.whole
		e.Index = v.idx
		return Event{}, &e
	}
	ev := Event{ID: in.ID, Name: in.Name}

	// event_name
	if err := v.bad("event_name"); err != nil {
		return Event{}, err
	}
	if in.Name == "" {
		if v.sent("event_name") {
			return v.fail("event_name", v.value("event_name", in.Name), "not a non-empty string", "a non-empty string")
		}
		return v.fail("event_name", "", "missing", "a non-empty string")
	}
	if len(in.Name) > lim.MaxValueBytes || !utf8.ValidString(in.Name) {
		return v.fail("event_name", v.value("event_name", in.Name), "too long or not UTF-8", fmt.Sprintf("at most %d bytes of UTF-8", lim.MaxValueBytes))
	}
	if strings.ContainsRune(in.Name, 0) {
		return v.fail("event_name", v.value("event_name", in.Name), "contains a NUL character", "text without NUL (\\u0000)")
	}

	// event_state
	if err := v.bad("event_state"); err != nil {
		return Event{}, err
	}
	ev.State = StateStart
	if in.State != "" {
		if in.State != StateStart && in.State != StateStop {
			return v.fail("event_state", v.value("event_state", string(in.State)), "is not a state", `"start" or "stop"`)
		}
		ev.State = in.State
	}

	// timestamp
	if err := v.bad("timestamp"); err != nil {
		return Event{}, err
	}
	ev.Time = now.UnixMilli()
	if in.Time != 0 || v.sent("timestamp") {
		if oldest := now.Add(-lim.Backfill).UnixMilli(); in.Time < oldest {
			return v.fail("timestamp", v.value("timestamp", in.Time), fmt.Sprintf("is older than the backfill window of %s", model.Duration(lim.Backfill)),
				"times after "+time.UnixMilli(oldest).UTC().Format(time.RFC3339)+" (--events.backfill-window)")
		}
		if newest := now.Add(lim.Future).UnixMilli(); in.Time > newest {
			return v.fail("timestamp", v.value("timestamp", in.Time), fmt.Sprintf("is more than %s in the future", model.Duration(lim.Future)),
				"times before "+time.UnixMilli(newest).UTC().Format(time.RFC3339))
		}
		ev.Time = in.Time
	}

	// value
	if err := v.bad("value"); err != nil {
		return Event{}, err
	}
	ev.Value = 1
	if ev.State == StateStop {
		ev.Value = 2
	}
	if in.Value != nil {
		f := *in.Value
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return v.fail("value", strconv.FormatFloat(f, 'g', -1, 64), "is not a finite number", "a JSON number")
		}
		ev.Value = f
	}

	// id
	idAccepted := func() string { return "a string of at most " + strconv.Itoa(lim.MaxValueBytes) + " bytes" }
	if in.src != nil {
		if e := in.src.getBad("id"); e != nil {
			return v.fail("id", e.Value, e.Problem, idAccepted())
		}
	}
	if in.ID == "" && v.sent("id") {
		return v.fail("id", v.value("id", in.ID), "is not a non-empty string", idAccepted())
	}
	if len(in.ID) > lim.MaxValueBytes || !utf8.ValidString(in.ID) || strings.ContainsRune(in.ID, 0) {
		return v.fail("id", v.value("id", in.ID), "is too long, not UTF-8 or contains a NUL character", idAccepted()+" without NUL")
	}

	// labels: attributes, then the legacy top-level fields.
	if err := v.bad("attributes"); err != nil {
		return Event{}, err
	}
	valueAccepted := func() string {
		return fmt.Sprintf("a non-empty value of at most %d bytes of UTF-8", lim.MaxValueBytes)
	}
	names := make([]string, 0, len(in.Attributes))
	for name := range in.Attributes {
		names = append(names, name)
	}
	sort.Strings(names)
	b := labels.NewScratchBuilder(len(in.Attributes) + len(in.Legacy))
	legacy := 0 // legacy fields that are not attributes too
	for _, name := range names {
		field := func() string { return "attributes." + name }
		if !model.LegacyValidation.IsValidLabelName(name) || strings.HasPrefix(name, "__") {
			return v.fail(field(), "", "is not a valid label name", "names matching [a-zA-Z_][a-zA-Z0-9_]* not starting with __")
		}
		if reservedLabels[name] {
			return v.fail(field(), "", "is reserved", "any other label name; event_name and event_state are set from the top-level fields")
		}
		if v.anyBad() {
			if err := v.bad(field()); err != nil {
				return Event{}, err
			}
		}
		s := in.Attributes[name]
		if msg := checkValue(s, lim); msg != "" {
			return v.fail(field(), v.value(field(), s), msg, valueAccepted())
		}
		b.Add(name, s)
	}
	for _, name := range LegacyLabelFields {
		if err := v.bad(name); err != nil {
			return Event{}, err
		}
		s, ok := in.Legacy[name]
		if !ok {
			continue
		}
		if msg := checkValue(s, lim); msg != "" {
			return v.fail(name, v.value(name, s), msg, valueAccepted())
		}
		if prev, dup := in.Attributes[name]; dup {
			if prev != s {
				return v.fail(name, v.value(name, s), fmt.Sprintf("conflicts with attributes.%s %q", name, prev), "the same value in both places, or only one of them")
			}
			continue
		}
		b.Add(name, s)
		legacy++
	}
	if n := len(names) + legacy; n > lim.MaxLabels {
		return v.fail("attributes", "", fmt.Sprintf("the event has %d labels", n), fmt.Sprintf("at most %d labels (attributes and the fields %s together)", lim.MaxLabels, strings.Join(LegacyLabelFields, ", ")))
	}
	b.Sort()
	ev.Labels = b.Labels()

	// metadata and links: kept in the log only.
	if err := v.bad("metadata"); err != nil {
		return Event{}, err
	}
	ev.Metadata = json.RawMessage("{}")
	switch {
	case in.Metadata != nil && in.src != nil:
		ev.Metadata = in.Metadata // Decoding checked and compacted it.
	case in.Metadata != nil:
		var m map[string]json.RawMessage
		var buf bytes.Buffer
		trimmed := bytes.TrimSpace(in.Metadata)
		if len(trimmed) == 0 || trimmed[0] != '{' || strictUnmarshal(trimmed, &m) != nil || json.Compact(&buf, trimmed) != nil {
			return v.fail("metadata", quote(in.Metadata), "is not an object", "a JSON object (any values)")
		}
		ev.Metadata = buf.Bytes()
	}
	if err := v.bad("links"); err != nil {
		return Event{}, err
	}
	for i, l := range in.Links {
		field := func() string { return "links[" + strconv.Itoa(i) + "]" }
		if v.anyBad() {
			if err := v.bad(field()); err != nil {
				return Event{}, err
			}
		}
		if l.Href == "" {
			return v.fail(field(), v.value(field(), l), "is not a link", `{"href": "<non-empty URL>", "text": "<optional>"}`)
		}
	}
	ev.Links = in.Links

	switch {
	case in.Raw == nil:
		ev.Raw = apiJSON(&ev)
	case in.src != nil:
		ev.Raw = in.Raw // Decoding made it.
	default:
		ev.Raw = append(json.RawMessage(nil), in.Raw...)
	}
	return ev, nil
}

// apiJSON renders a validated event in the change-events API's JSON form.
func apiJSON(ev *Event) json.RawMessage {
	o := map[string]any{
		"event_name":  ev.Name,
		"event_state": ev.State,
		"timestamp":   ev.Time,
		"value":       ev.Value,
		"metadata":    ev.Metadata,
	}
	if ev.Labels.Len() > 0 {
		o["attributes"] = ev.Labels.Map()
	}
	if ev.ID != "" {
		o["id"] = ev.ID
	}
	if len(ev.Links) > 0 {
		o["links"] = ev.Links
	}
	b, err := json.Marshal(o)
	if err != nil { // Not reached: every value marshals.
		return json.RawMessage("{}")
	}
	return b
}
