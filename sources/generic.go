package sources

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/theory/jsonpath"

	"github.com/tidemark/tidemark/events"
)

// GenericSpec maps any JSON webhook to a change event. A value that
// starts with "$" is an RFC 9535 JSONPath query into the payload; any
// other value is taken as it is.
type GenericSpec struct {
	// Name names the hook: it receives at .../hooks/generic/{name}.
	Name string `json:"name"`
	// EventName is the event's name: a literal or a path (required).
	EventName string `json:"event_name"`
	// State is "start" (the default), "stop", or a path whose value is
	// start or stop, or is mapped by States.
	State string `json:"state"`
	// States maps the values State's path finds to start or stop; with it,
	// a value it does not list is ignored rather than refused.
	States map[string]string `json:"states"`
	// Timestamp is a path to the event's time (RFC 3339 or epoch seconds or
	// milliseconds); empty: when it is received.
	Timestamp string `json:"timestamp"`
	// ID is a path to a delivery or event id, so a redelivery is stored
	// once; the event's id is "<name>-<state>-<value>", so that a start and
	// a stop may share the vendor's id.
	ID string `json:"id"`
	// Labels maps label names to literals or paths; a path that finds
	// nothing leaves its label out.
	Labels map[string]string `json:"labels"`
	// Metadata maps metadata keys to literals or paths (any JSON value).
	Metadata map[string]string `json:"metadata"`
}

// Generic is a compiled GenericSpec. It is immutable and safe for
// concurrent use.
type Generic struct {
	spec      GenericSpec
	name      value
	state     value
	timestamp value
	id        value
	labels    map[string]value
	metadata  map[string]value
}

// value is a literal or a compiled path.
type value struct {
	text string
	path *jsonpath.Path
}

var genericNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// NewGeneric checks and compiles a spec. Its errors name the field
// ("labels.service") and what is accepted.
func NewGeneric(spec GenericSpec) (*Generic, error) {
	if !genericNameRE.MatchString(spec.Name) {
		return nil, fmt.Errorf("name: %q is not accepted; accepted: lowercase letters, digits, - and _, starting with a letter or digit (it is the last segment of the hook's URL)", spec.Name)
	}
	g := &Generic{spec: spec, labels: map[string]value{}, metadata: map[string]value{}}
	var err error
	if spec.EventName == "" {
		return nil, fmt.Errorf("event_name: missing; accepted: a name, or a JSONPath such as $.deployment.name")
	}
	if g.name, err = compile("event_name", spec.EventName); err != nil {
		return nil, err
	}
	switch {
	case spec.State == "", spec.State == string(start), spec.State == string(stop):
		g.state = value{text: spec.State}
	case strings.HasPrefix(spec.State, "$"):
		if g.state, err = compile("state", spec.State); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("state: %q is not a state; accepted: start, stop, or a JSONPath ($...) whose value is start or stop or is mapped by states", spec.State)
	}
	for _, k := range sortedKeys(spec.States) {
		if v := spec.States[k]; v != string(start) && v != string(stop) {
			return nil, fmt.Errorf("states.%s: %q is not a state; accepted: start or stop", k, v)
		}
	}
	if len(spec.States) > 0 && g.state.path == nil {
		return nil, fmt.Errorf("states: set, but state is not a JSONPath; accepted: states together with a state such as $.status")
	}
	for _, f := range []struct {
		field, text string
		dst         *value
	}{{"timestamp", spec.Timestamp, &g.timestamp}, {"id", spec.ID, &g.id}} {
		if f.text == "" {
			continue
		}
		if !strings.HasPrefix(f.text, "$") {
			return nil, fmt.Errorf("%s: %q is not a JSONPath; accepted: a JSONPath into the payload, starting with $", f.field, f.text)
		}
		if *f.dst, err = compile(f.field, f.text); err != nil {
			return nil, err
		}
	}
	for _, k := range sortedKeys(spec.Labels) {
		field := "labels." + k
		if !model.LegacyValidation.IsValidLabelName(k) || strings.HasPrefix(k, "__") || k == "event_name" || k == "event_state" {
			return nil, fmt.Errorf("%s: %q is not a label name Tidemark accepts; accepted: [a-zA-Z_][a-zA-Z0-9_]*, not starting with __, not event_name or event_state", field, k)
		}
		if g.labels[k], err = compile(field, spec.Labels[k]); err != nil {
			return nil, err
		}
	}
	for _, k := range sortedKeys(spec.Metadata) {
		if g.metadata[k], err = compile("metadata."+k, spec.Metadata[k]); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func compile(field, s string) (value, error) {
	if !strings.HasPrefix(s, "$") {
		return value{text: s}, nil
	}
	p, err := jsonpath.Parse(s)
	if err != nil {
		return value{}, fmt.Errorf("%s: %q is not a JSONPath: %v; accepted: an RFC 9535 JSONPath such as $.repository.name", field, s, err)
	}
	return value{text: s, path: p}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Name is the hook's name.
func (g *Generic) Name() string { return g.spec.Name }

// Spec returns the spec the hook was compiled from.
func (g *Generic) Spec() GenericSpec { return g.spec }

// Convert turns a payload into one event as the spec says.
func (g *Generic) Convert(body []byte) (Conversion, error) {
	source := fmt.Sprintf("generic hook %q", g.spec.Name)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Conversion{}, &PayloadError{Source: source, Problem: "the body is not JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	if dec.More() {
		return Conversion{}, &PayloadError{Source: source, Problem: "the body is not one JSON value"}
	}
	// scalar finds a value as a label value; found is false when a path
	// selects nothing (or null).
	scalar := func(field string, v value) (string, bool, error) {
		if v.path == nil {
			return v.text, v.text != "", nil
		}
		nodes := v.path.Select(doc)
		if len(nodes) == 0 || (len(nodes) == 1 && nodes[0] == nil) {
			return "", false, nil
		}
		if len(nodes) > 1 {
			return "", false, &PayloadError{Source: source, Field: field, Problem: fmt.Sprintf("selects %d values with %s", len(nodes), v.text), Accepted: "a path that selects one value"}
		}
		s, err := scalarText(nodes[0])
		if err != nil {
			return "", false, &PayloadError{Source: source, Field: field, Problem: fmt.Sprintf("%s (at %s)", err, v.text), Accepted: "a path to a string, number or bool"}
		}
		return s, true, nil
	}
	required := func(field string, v value) (string, error) {
		s, found, err := scalar(field, v)
		if err != nil {
			return "", err
		}
		if !found || s == "" {
			return "", &PayloadError{Source: source, Field: field, Problem: "is missing: " + v.text + " selects nothing in the payload", Accepted: "a payload that has it, or a mapping whose " + field + " points at a field it has"}
		}
		return s, nil
	}

	in := events.Input{State: start}
	var err error
	if in.Name, err = required("event_name", g.name); err != nil {
		return Conversion{}, err
	}
	switch {
	case g.state.path == nil && g.state.text != "":
		in.State = events.State(g.state.text)
	case g.state.path != nil:
		s, err := required("state", g.state)
		if err != nil {
			return Conversion{}, err
		}
		switch mapped, ok := g.spec.States[s]; {
		case ok:
			in.State = events.State(mapped)
		case len(g.spec.States) > 0:
			return ignored("state %q (at %s) is not one the hook maps (states: %s)", s, g.state.text, strings.Join(sortedKeys(g.spec.States), ", "))
		case s == string(start) || s == string(stop):
			in.State = events.State(s)
		default:
			return Conversion{}, &PayloadError{Source: source, Field: "state", Value: jsonString(s), Problem: "is not a state (at " + g.state.text + ")", Accepted: "start or stop, or a value the hook maps with states"}
		}
	}
	if g.timestamp.path != nil {
		s, err := required("timestamp", g.timestamp)
		if err != nil {
			return Conversion{}, err
		}
		if in.Time, err = vendorTime(source, "timestamp", s); err != nil {
			return Conversion{}, err
		}
	}
	if g.id.path != nil {
		s, err := required("id", g.id)
		if err != nil {
			return Conversion{}, err
		}
		in.ID = g.spec.Name + "-" + string(in.State) + "-" + s
	}
	in.Attributes = map[string]string{}
	for _, k := range sortedKeys(g.labels) {
		s, found, err := scalar("labels."+k, g.labels[k])
		if err != nil {
			return Conversion{}, err
		}
		if found && s != "" {
			in.Attributes[k] = s
		}
	}
	meta := map[string]any{"source": "generic", "hook": g.spec.Name}
	for _, k := range sortedKeys(g.metadata) {
		v := g.metadata[k]
		if v.path == nil {
			meta[k] = v.text
			continue
		}
		switch nodes := v.path.Select(doc); len(nodes) {
		case 0:
		case 1:
			meta[k] = nodes[0]
		default:
			meta[k] = []any(nodes)
		}
	}
	in.Metadata = metadata(meta)
	return Conversion{Events: []events.Input{in}}, nil
}

// scalarText renders a JSON scalar as a label value; numbers in their
// shortest form, as the change-events API writes them.
func scalarText(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return strconv.FormatInt(i, 10), nil
		}
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return v.String(), nil
		}
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	case map[string]any:
		return "", fmt.Errorf("is an object")
	case []any:
		return "", fmt.Errorf("is an array")
	}
	return "", fmt.Errorf("is not a string, number or bool")
}
