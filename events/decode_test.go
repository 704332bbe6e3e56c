package events

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

var decodeNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		check  func(t *testing.T, evs []Event)
		errHas []string // substrings of the error; nil: no error
	}{
		{
			name: "seed event",
			body: `{"timestamp": "2026-11-25T09:59:00Z", "event_name": "sample-app-20", "event_state": "start", "workspace": "sample-service", "namespace": "prod", "entity_type": "service", "data_source_name": "github-prathamesh-sonpatki-AMXD - ap-south-1 (system)"}`,
			check: func(t *testing.T, evs []Event) {
				require.Len(t, evs, 1)
				ev := evs[0]
				require.Equal(t, "sample-app-20", ev.Name)
				require.Equal(t, StateStart, ev.State)
				require.Equal(t, decodeNow.Add(-time.Minute).UnixMilli(), ev.Time)
				require.Equal(t, 1.0, ev.Value)
				require.Equal(t, labels.FromStrings("data_source_name", "github-prathamesh-sonpatki-AMXD - ap-south-1 (system)", "entity_type", "service", "namespace", "prod", "workspace", "sample-service"), ev.Labels)
			},
		},
		{
			name: "defaults: start, now, value 1; stop value 2",
			body: `[{"event_name":"a"},{"event_name":"a","event_state":"stop"}]`,
			check: func(t *testing.T, evs []Event) {
				require.Equal(t, decodeNow.UnixMilli(), evs[0].Time)
				require.Equal(t, 1.0, evs[0].Value)
				require.Equal(t, StateStop, evs[1].State)
				require.Equal(t, 2.0, evs[1].Value)
				require.Equal(t, `{}`, string(evs[0].Metadata))
			},
		},
		{
			name: "attributes of every type; metadata and links kept out of labels",
			body: `{"event_name":"a","attributes":{"s":"x","n":20,"f":0.25,"e":1e3,"b":false},"metadata":{"commit":"9f2c","nested":{"k":[1,2]}},"links":[{"href":"https://ci/1","text":"run"}],"value":3.5,"id":"k1"}`,
			check: func(t *testing.T, evs []Event) {
				require.Equal(t, labels.FromStrings("b", "false", "e", "1000", "f", "0.25", "n", "20", "s", "x"), evs[0].Labels)
				require.JSONEq(t, `{"commit":"9f2c","nested":{"k":[1,2]}}`, string(evs[0].Metadata))
				require.Equal(t, []Link{{Href: "https://ci/1", Text: "run"}}, evs[0].Links)
				require.Equal(t, 3.5, evs[0].Value)
				require.Equal(t, "k1", evs[0].ID)
			},
		},
		{
			name: "null optional fields are absent",
			body: `{"event_name":"a","id":null,"metadata":null,"attributes":null,"timestamp":null}`,
			check: func(t *testing.T, evs []Event) {
				require.Equal(t, "", evs[0].ID)
				require.Equal(t, decodeNow.UnixMilli(), evs[0].Time)
			},
		},
		{
			name: "legacy field equal to an attribute is fine",
			body: `{"event_name":"a","namespace":"prod","attributes":{"namespace":"prod"}}`,
			check: func(t *testing.T, evs []Event) {
				require.Equal(t, labels.FromStrings("namespace", "prod"), evs[0].Labels)
			},
		},
		{
			name: "kept compact, escapes as sent; a repeated key is its last value",
			body: "{ \"event_name\" : \"caf\\u00e9\",\n \"metadata\": { \"k\" : [1, 2] }, \"attributes\": {\"s\": \"x\", \"s\": \"y\"} }",
			check: func(t *testing.T, evs []Event) {
				require.Equal(t, "café", evs[0].Name)
				require.Equal(t, labels.FromStrings("s", "y"), evs[0].Labels)
				require.Equal(t, `{"k":[1,2]}`, string(evs[0].Metadata))
				require.Equal(t, `{"event_name":"caf\u00e9","metadata":{"k":[1,2]},"attributes":{"s":"x","s":"y"}}`, string(evs[0].Raw))
			},
		},
		{name: "not UTF-8", body: "{\"event_name\":\"a\xffb\"}", errHas: []string{"not valid UTF-8 (at byte 16)", "JSON in UTF-8"}},
		{name: "NaN is not JSON", body: `{"event_name":"a","value":NaN}`, errHas: []string{"not valid JSON", "invalid character 'N'", "at byte 27"}},
		{name: "bad number is not JSON", body: `[{"event_name":"a","value":1.2.3}]`, errHas: []string{"not a JSON array of objects", "at byte"}},
		{name: "empty body", body: "  ", errHas: []string{"body is empty"}},
		{name: "not JSON", body: "event_name=a", errHas: []string{"must be a JSON object"}},
		{name: "trailing data", body: `{"event_name":"a"} {"event_name":"b"}`, errHas: []string{"not valid JSON", "after the JSON value"}},
		{name: "empty array", body: `[]`, errHas: []string{"array is empty", "1 to 1000"}},
		{name: "batch too large", body: "[" + strings.Repeat(`{"event_name":"a"},`, 1000) + `{"event_name":"a"}]`, errHas: []string{"1001 events", "at most 1000", "--events.max-batch"}},
		{name: "missing name", body: `{"event_state":"start"}`, errHas: []string{`field "event_name"`, "missing", "non-empty string"}},
		{name: "name wrong type", body: `{"event_name":5}`, errHas: []string{`field "event_name" value 5`}},
		{name: "bad state", body: `{"event_name":"a","event_state":"begin"}`, errHas: []string{`field "event_state" value "begin"`, `"start" or "stop"`}},
		{name: "unknown field", body: `{"event_name":"a","severity":"high"}`, errHas: []string{`field "severity"`, "unknown field", "attributes for anything else"}},
		{name: "reserved attribute", body: `{"event_name":"a","attributes":{"event_name":"x"}}`, errHas: []string{`attributes.event_name`, "reserved"}},
		{name: "dunder attribute", body: `{"event_name":"a","attributes":{"__name__":"x"}}`, errHas: []string{`attributes.__name__`, "not a valid label name"}},
		{name: "empty attribute value", body: `{"event_name":"a","attributes":{"k":""}}`, errHas: []string{`attributes.k`, "is empty"}},
		{name: "long attribute value", body: `{"event_name":"a","attributes":{"k":"` + strings.Repeat("x", 1025) + `"}}`, errHas: []string{`attributes.k`, "1025 bytes", "at most 1024 bytes"}},
		{name: "NUL in name", body: `{"event_name":"a\u0000b"}`, errHas: []string{`field "event_name"`, "NUL"}},
		{name: "NUL in id", body: `{"event_name":"a","id":"x\u0000"}`, errHas: []string{`field "id"`, "NUL"}},
		{name: "NUL in attribute", body: `{"event_name":"a","attributes":{"k":"v\u0000"}}`, errHas: []string{`attributes.k`, "NUL"}},
		{name: "null attribute", body: `{"event_name":"a","attributes":{"k":null}}`, errHas: []string{`attributes.k`, "string, number or bool"}},
		{name: "attributes not an object", body: `{"event_name":"a","attributes":["x"]}`, errHas: []string{`field "attributes"`, "not an object"}},
		{name: "too many labels", body: `{"event_name":"a","namespace":"n","attributes":{` + manyAttrs(32) + `}}`, errHas: []string{"33 labels", "at most 32"}},
		{name: "conflicting legacy field", body: `{"event_name":"a","namespace":"prod","attributes":{"namespace":"dev"}}`, errHas: []string{`field "namespace" value "prod"`, `conflicts with attributes.namespace "dev"`}},
		{name: "legacy field not a string", body: `{"event_name":"a","workspace":1}`, errHas: []string{`field "workspace" value 1`, "not a string"}},
		{name: "value not a number", body: `{"event_name":"a","value":"1"}`, errHas: []string{`field "value" value "1"`, "JSON number"}},
		{name: "id empty", body: `{"event_name":"a","id":""}`, errHas: []string{`field "id"`}},
		{name: "metadata not an object", body: `{"event_name":"a","metadata":"x"}`, errHas: []string{`field "metadata"`, "JSON object"}},
		{name: "link without href", body: `{"event_name":"a","links":[{"text":"x"}]}`, errHas: []string{`field "links[0]"`, "href"}},
		{name: "link with unknown field", body: `{"event_name":"a","links":[{"href":"x","url":"y"}]}`, errHas: []string{`field "links[0]"`}},
		{name: "negative epoch", body: `{"event_name":"a","timestamp":-5}`, errHas: []string{`field "timestamp" value -5`, "non-negative"}},
		{name: "epoch in microseconds", body: `{"event_name":"a","timestamp":1795597200000000}`, errHas: []string{`field "timestamp"`, "too large"}},
		{name: "bad event in batch named by index", body: `[{"event_name":"a"},{"event_name":"b"},{"event_name":""}]`, errHas: []string{"event 2:", `field "event_name"`, "nothing of this batch was written"}},
		{name: "batch element not an object", body: `[{"event_name":"a"}, 3]`, errHas: []string{"event 1:", "must be a JSON object"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decode([]byte(tc.body), decodeNow, DefaultLimits)
			if tc.errHas == nil {
				require.NoError(t, err)
				tc.check(t, evs)
				return
			}
			require.Error(t, err)
			require.Nil(t, evs)
			var ie *InputError
			require.True(t, errors.As(err, &ie), "error %T is not an *InputError", err)
			for _, sub := range tc.errHas {
				require.Contains(t, err.Error(), sub)
			}
		})
	}
}

func manyAttrs(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, `"k`+strings.Repeat("x", i)+`":"v"`)
	}
	return strings.Join(parts, ",")
}

// FuzzDecode: no input panics, and every rejection is an *InputError (a 400).
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"event_name":"a"}`,
		`[{"event_name":"a","event_state":"stop","timestamp":1795597200}]`,
		`{"event_name":"a","attributes":{"k":1,"b":true},"metadata":{"x":[1]},"links":[{"href":"h"}]}`,
		`{"timestamp":"2026-11-25T09:00:00Z","event_name":"x","workspace":"w","namespace":"n","entity_type":"e","data_source_name":"d","value":3,"id":"i"}`,
		`[`, `{"event_name":"\u0000"}`, `{"event_name":"a","timestamp":"1e400"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := Decode(body, decodeNow, DefaultLimits)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("rejection %T is not an *InputError: %v", err, err)
			}
			if evs != nil {
				t.Fatal("events returned with an error")
			}
			return
		}
		if len(evs) == 0 {
			t.Fatal("no error and no events")
		}
		for _, ev := range evs {
			if ev.Name == "" || (ev.State != StateStart && ev.State != StateStop) || ev.Labels.Len() > DefaultLimits.MaxLabels {
				t.Fatalf("accepted an invalid event: %+v", ev)
			}
			// What the log keeps of an event is the same event.
			again, err := Decode(ev.Raw, decodeNow, DefaultLimits)
			if err != nil {
				t.Fatalf("the kept form %s is refused: %v", ev.Raw, err)
			}
			require.Equal(t, ev, again[0])
		}
	})
}

// TestDecodeTrailingData: data after an event or after the array is
// refused, whichever decoder reads it.
func TestDecodeTrailingData(t *testing.T) {
	for _, body := range []string{`{"event_name":"a"} x`, `[{"event_name":"a"}] {}`, `{"event_name":"a"}}`} {
		_, err := Decode([]byte(body), time.Now(), DefaultLimits)
		require.ErrorContains(t, err, "unexpected data after the JSON value", body)
	}
}

// TestFieldNames: the decoder's field table names the legacy label fields
// in LegacyLabelFields' order.
func TestFieldNames(t *testing.T) {
	require.Len(t, LegacyLabelFields, nFields-fLegacy)
	for j, name := range LegacyLabelFields {
		require.Equal(t, name, fieldNames[fLegacy+j])
	}
}
