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
	"github.com/valyala/fastjson"
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

const acceptedFields = "event_name, event_state, timestamp, attributes, value, id, metadata, links, workspace, namespace, entity_type, data_source_name"

// Label names that attributes cannot use: they are set by Tidemark.
var reservedLabels = map[string]bool{labels.MetricName: true, "event_name": true, "event_state": true}

// Decode parses a request body holding one change event (a JSON object) or a
// JSON array of them, and validates them with Validate. now is the time the
// request was received: the default event time, and the reference for the
// backfill window. Every error is an *InputError; on error nothing is
// returned.
//
// The body is checked and parsed once, with fastjson; encoding/json only
// words the error of a body that is not JSON, as every other API of
// Tidemark does.
func Decode(body []byte, now time.Time, lim Limits) ([]Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &InputError{Index: -1, Problem: "the request body is empty", Accepted: wholeAccepted}
	}
	array := body[0] == '['
	if !array && body[0] != '{' {
		return nil, &InputError{Index: -1, Problem: "a change event must be a JSON object, got " + quote(body), Accepted: eventAccepted}
	}
	if !utf8.Valid(body) {
		return nil, &InputError{Index: -1, Problem: fmt.Sprintf("the body is not valid UTF-8 (at byte %d)", invalidUTF8(body)), Accepted: "JSON in UTF-8"}
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := parse(p, body)
	if err != nil {
		if array {
			return nil, &InputError{Index: -1, Problem: "the body is not a JSON array of objects: " + err.Error(), Accepted: wholeAccepted}
		}
		return nil, &InputError{Index: -1, Problem: "the event is not valid JSON: " + err.Error(), Accepted: eventAccepted}
	}
	var arena []byte // Raw and metadata of every event, in one allocation
	if !array {
		ev, err := Validate(decodeValue(v, &jsonSource{}, &arena), -1, now, lim)
		if err != nil {
			return nil, err
		}
		return []Event{ev}, nil
	}
	elems, _ := v.Array() // An array: body[0] is '['.
	ins := make([]Input, len(elems))
	srcs := make([]jsonSource, len(elems))
	arena = make([]byte, 0, len(body))
	for i, e := range elems {
		ins[i] = decodeValue(e, &srcs[i], &arena)
	}
	return ValidateAll(ins, now, lim)
}

const (
	wholeAccepted = "one change event as a JSON object, or a JSON array of them"
	eventAccepted = "an object with at least event_name"
)

// parsers are reused across requests: a parser keeps the values of the
// last body it parsed, valid until it parses the next.
var parsers fastjson.ParserPool

// parse checks body strictly (fastjson's parser alone takes NaN and
// malformed numbers) and parses it.
func parse(p *fastjson.Parser, body []byte) (*fastjson.Value, error) {
	if err := fastjson.ValidateBytes(body); err != nil {
		return nil, syntaxProblem(body, err)
	}
	v, err := p.ParseBytes(body)
	if err != nil { // Deeper than fastjson parses.
		return nil, err
	}
	return v, nil
}

// syntaxProblem words what is wrong with a body that is not JSON as
// encoding/json does, and with the byte where it stops; fastjson's own
// error where encoding/json takes the body.
func syntaxProblem(body []byte, fastErr error) error {
	var raw json.RawMessage
	err := json.Unmarshal(body, &raw)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se) && strings.HasSuffix(se.Error(), "after top-level value"):
		return errors.New("unexpected data after the JSON value")
	case errors.As(err, &se):
		return fmt.Errorf("%s (at byte %d)", se.Error(), se.Offset)
	case err != nil:
		return errors.New(jsonProblem(err))
	}
	return fastErr
}

func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
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

// The fields of a change event in the API's JSON form.
const (
	fName = iota
	fState
	fTimestamp
	fAttributes
	fValue
	fID
	fMetadata
	fLinks
	fLegacy // the first of LegacyLabelFields
	nFields = fLegacy + 4
)

var fieldNames = [nFields]string{"event_name", "event_state", "timestamp", "attributes", "value", "id", "metadata", "links",
	"workspace", "namespace", "entity_type", "data_source_name"}

func fieldIndex(k []byte) int {
	for i, n := range fieldNames {
		if string(k) == n {
			return i
		}
	}
	return -1
}

// decodeValue reads one change event from its parsed JSON. It never fails:
// what is wrong is kept in the input and reported by Validate, in the order
// Validate checks the fields, so that an event's first problem is named the
// same way whether it came as JSON or as an Input. The input refers to v
// (for error messages) until its parser parses again; its values do not.
// src is the input's, empty; arena is where its Raw and Metadata are
// written (they share its array with those of other events).
func decodeValue(v *fastjson.Value, src *jsonSource, arena *[]byte) Input {
	in := Input{src: src}
	src.fields = src.buf[:0]
	keep := func(v *fastjson.Value) []byte {
		from := len(*arena)
		*arena = v.MarshalTo(*arena)
		return (*arena)[from:len(*arena):len(*arena)]
	}
	if v.Type() != fastjson.TypeObject {
		src.whole = &InputError{Index: -1, Problem: "a change event must be a JSON object, got " + quote(v.MarshalTo(nil)), Accepted: eventAccepted}
		return in
	}
	// Kept before the strings are read: reading one unescapes it in place.
	in.Raw = keep(v)
	obj, _ := v.Object()
	var fields [nFields]*fastjson.Value
	var unknown []string
	obj.Visit(func(k []byte, fv *fastjson.Value) {
		i := fieldIndex(k)
		if i < 0 {
			unknown = append(unknown, string(k))
			return
		}
		fields[i] = fv // As encoding/json: the last of a repeated key.
	})
	if len(unknown) > 0 {
		sort.Strings(unknown)
		src.whole = &InputError{Index: -1, Field: unknown[0], Problem: "unknown field", Accepted: acceptedFields + " (attributes for anything else)"}
		return in
	}
	// bad records a type error of a field; Validate reports it.
	bad := func(field string, value *fastjson.Value, problem, accepted string) {
		e := &InputError{Index: -1, Field: field, Problem: problem, Accepted: accepted}
		if value != nil {
			e.Value = quote(value.MarshalTo(nil))
		}
		src.setBad(field, e)
	}
	present := func(i int) (*fastjson.Value, bool) {
		fv := fields[i]
		if fv == nil || fv.Type() == fastjson.TypeNull {
			return nil, false
		}
		src.set(fieldNames[i], fv)
		return fv, true
	}

	if fv, ok := present(fName); ok {
		if b, err := fv.StringBytes(); err != nil {
			bad("event_name", fv, "not a non-empty string", "a non-empty string")
		} else {
			in.Name = string(b)
		}
	}
	if fv, ok := present(fState); ok {
		if b, err := fv.StringBytes(); err != nil || len(b) == 0 {
			bad("event_state", fv, "is not a state", `"start" or "stop"`)
		} else {
			switch string(b) { // No copy of the usual ones.
			case string(StateStart):
				in.State = StateStart
			case string(StateStop):
				in.State = StateStop
			default:
				in.State = State(b)
			}
		}
	}
	if fv, ok := present(fTimestamp); ok {
		ts, err := decodeTimestamp(fv)
		if err != nil {
			bad("timestamp", fv, "is not a time: "+err.Error(), acceptedTimestamps)
		}
		in.Time = ts
	}
	if fv, ok := present(fValue); ok {
		if fv.Type() != fastjson.TypeNumber {
			bad("value", fv, "is not a number", "a JSON number")
		} else if f, err := strconv.ParseFloat(string(fv.MarshalTo(nil)), 64); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			bad("value", fv, "is not a finite number", "a JSON number")
		} else {
			in.Value = &f
		}
	}
	if fv, ok := present(fID); ok {
		if b, err := fv.StringBytes(); err != nil {
			bad("id", fv, "is not a non-empty string", "") // Validate names the limit.
		} else {
			in.ID = string(b)
		}
	}
	if fv, ok := present(fAttributes); ok {
		if attrs, err := fv.Object(); err != nil {
			bad("attributes", fv, "is not an object", "an object of string, number or bool values")
		} else {
			in.Attributes = make(map[string]string, attrs.Len())
			attrs.Visit(func(k []byte, av *fastjson.Value) {
				name := string(k)
				src.attrs = append(src.attrs, sourceField{name, av})
				s, err := labelValue(av)
				if err != nil {
					bad("attributes."+name, av, err.Error(), "a string, number or bool")
				}
				in.Attributes[name] = s
			})
		}
	}
	for j, name := range LegacyLabelFields {
		fv, ok := present(fLegacy + j)
		if !ok {
			continue
		}
		b, err := fv.StringBytes()
		if err != nil {
			bad(name, fv, "is not a string", "a string")
			continue
		}
		if in.Legacy == nil {
			in.Legacy = map[string]string{}
		}
		in.Legacy[name] = string(b)
	}
	if fv, ok := present(fMetadata); ok {
		if fv.Type() != fastjson.TypeObject {
			bad("metadata", fv, "is not an object", "a JSON object (any values)")
		} else {
			in.Metadata = keep(fv)
		}
	}
	if fv, ok := present(fLinks); ok {
		if rawLinks, err := fv.Array(); err != nil {
			bad("links", fv, "is not an array", `an array of {"href": "...", "text": "..."}`)
		} else {
			for i, rl := range rawLinks {
				field := "links[" + strconv.Itoa(i) + "]"
				src.set(field, rl)
				l, ok := decodeLink(rl)
				if !ok {
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

// decodeLink reads {"href": "...", "text": "..."}, nothing else.
func decodeLink(v *fastjson.Value) (Link, bool) {
	obj, err := v.Object()
	if err != nil {
		return Link{}, false
	}
	var l Link
	ok := true
	obj.Visit(func(k []byte, fv *fastjson.Value) {
		var dst *string
		switch string(k) {
		case "href":
			dst = &l.Href
		case "text":
			dst = &l.Text
		default:
			ok = false
			return
		}
		switch fv.Type() {
		case fastjson.TypeNull:
		case fastjson.TypeString:
			*dst = string(fv.GetStringBytes())
		default:
			ok = false
		}
	})
	return l, ok
}

func decodeTimestamp(v *fastjson.Value) (int64, error) {
	switch v.Type() {
	case fastjson.TypeString:
		return ParseTimestamp(string(v.GetStringBytes()))
	case fastjson.TypeNumber:
		f, err := strconv.ParseFloat(string(v.MarshalTo(nil)), 64)
		if err != nil {
			return 0, fmt.Errorf("not a number")
		}
		return EpochToMillis(f)
	}
	return 0, fmt.Errorf("neither a string nor a number")
}

// labelValue renders a string, number or bool attribute as a label value.
// Numbers are written in their shortest decimal form, so 20 and 20.0 are
// the same label.
func labelValue(v *fastjson.Value) (string, error) {
	switch v.Type() {
	case fastjson.TypeString:
		return string(v.GetStringBytes()), nil
	case fastjson.TypeTrue:
		return "true", nil
	case fastjson.TypeFalse:
		return "false", nil
	case fastjson.TypeNumber:
		f, err := strconv.ParseFloat(string(v.MarshalTo(nil)), 64)
		if err != nil || math.IsInf(f, 0) {
			return "", errors.New("is not a finite number")
		}
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	}
	return "", errors.New("is not a string, number or bool")
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
