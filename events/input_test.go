package events

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestValidate: an Input built in code is held to the rules of the API and
// answered with the same messages as the same event sent as JSON.
func TestValidate(t *testing.T) {
	ptr := func(f float64) *float64 { return &f }
	for _, tc := range []struct {
		name string
		in   Input
		// json is the same event in the API's form: when set, Decode must
		// give the same error.
		json   string
		errHas []string // nil: no error
		check  func(t *testing.T, ev Event)
	}{
		{
			name: "defaults: start at the received time, value 1, empty metadata",
			in:   Input{Name: "deploy"},
			check: func(t *testing.T, ev Event) {
				require.Equal(t, StateStart, ev.State)
				require.Equal(t, decodeNow.UnixMilli(), ev.Time)
				require.Equal(t, 1.0, ev.Value)
				require.JSONEq(t, `{}`, string(ev.Metadata))
				require.JSONEq(t, `{"event_name":"deploy","event_state":"start","timestamp":1795600800000,"value":1,"metadata":{}}`, string(ev.Raw))
			},
		},
		{
			name: "everything set; Raw is the API's JSON form",
			in: Input{
				ID: "gh-1", Name: "deploy", State: StateStop, Time: decodeNow.Add(-time.Minute).UnixMilli(), Value: ptr(3),
				Attributes: map[string]string{"service": "checkout", "env": "prod"}, Legacy: map[string]string{"namespace": "shop"},
				Metadata: json.RawMessage(` {"ref": "main"} `), Links: []Link{{Href: "https://ci/1", Text: "run"}},
			},
			check: func(t *testing.T, ev Event) {
				require.Equal(t, labels.FromStrings("env", "prod", "namespace", "shop", "service", "checkout"), ev.Labels)
				require.Equal(t, 3.0, ev.Value)
				require.Equal(t, `{"ref":"main"}`, string(ev.Metadata))
				require.JSONEq(t, `{"id":"gh-1","event_name":"deploy","event_state":"stop","timestamp":1795600740000,"value":3,
					"attributes":{"env":"prod","namespace":"shop","service":"checkout"},"metadata":{"ref":"main"},"links":[{"href":"https://ci/1","text":"run"}]}`, string(ev.Raw))
			},
		},
		{name: "missing name", in: Input{}, json: `{}`, errHas: []string{`field "event_name": missing`}},
		{name: "bad state", in: Input{Name: "a", State: "begin"}, json: `{"event_name":"a","event_state":"begin"}`, errHas: []string{`field "event_state" value "begin": is not a state`}},
		{name: "too old", in: Input{Name: "a", Time: 1}, json: `{"event_name":"a","timestamp":1}`, errHas: []string{`field "timestamp" value 1: is older than the backfill window of 1w`}},
		{name: "in the future", in: Input{Name: "a", Time: decodeNow.Add(time.Hour).UnixMilli()}, errHas: []string{`field "timestamp" value 1795604400000: is more than 10m in the future`}},
		{name: "value not finite", in: Input{Name: "a", Value: ptr(math.Inf(1))}, errHas: []string{`field "value" value +Inf: is not a finite number`}},
		{name: "reserved attribute", in: Input{Name: "a", Attributes: map[string]string{"event_state": "x"}}, json: `{"event_name":"a","attributes":{"event_state":"x"}}`, errHas: []string{`field "attributes.event_state": is reserved`}},
		{name: "bad label name", in: Input{Name: "a", Attributes: map[string]string{"bad-key": "x"}}, json: `{"event_name":"a","attributes":{"bad-key":"x"}}`, errHas: []string{`field "attributes.bad-key": is not a valid label name`}},
		{name: "empty attribute", in: Input{Name: "a", Attributes: map[string]string{"k": ""}}, json: `{"event_name":"a","attributes":{"k":""}}`, errHas: []string{`field "attributes.k" value "": is empty`}},
		{name: "legacy conflict", in: Input{Name: "a", Attributes: map[string]string{"namespace": "dev"}, Legacy: map[string]string{"namespace": "prod"}}, json: `{"event_name":"a","namespace":"prod","attributes":{"namespace":"dev"}}`, errHas: []string{`field "namespace" value "prod": conflicts with attributes.namespace "dev"`}},
		{name: "metadata not an object", in: Input{Name: "a", Metadata: json.RawMessage(`[1]`)}, json: `{"event_name":"a","metadata":[1]}`, errHas: []string{`field "metadata" value [1]: is not an object`}},
		{name: "link without href", in: Input{Name: "a", Links: []Link{{Text: "x"}}}, errHas: []string{`field "links[0]" value {"href":"","text":"x"}: is not a link`}},
		{name: "long id", in: Input{Name: "a", ID: strings.Repeat("x", 1025)}, errHas: []string{`field "id"`, "is too long", "at most 1024 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Validate(tc.in, -1, decodeNow, DefaultLimits)
			if tc.errHas == nil {
				require.NoError(t, err)
				tc.check(t, ev)
				return
			}
			var ie *InputError
			require.True(t, errors.As(err, &ie), "error %T is not an *InputError", err)
			for _, sub := range tc.errHas {
				require.Contains(t, err.Error(), sub)
			}
			if tc.json != "" {
				_, jerr := Decode([]byte(tc.json), decodeNow, DefaultLimits)
				require.Error(t, jerr)
				require.Equal(t, err.Error(), jerr.Error(), "the same event as JSON gets the same message")
			}
		})
	}
}

func TestValidateAll(t *testing.T) {
	_, err := ValidateAll(nil, decodeNow, DefaultLimits)
	require.ErrorContains(t, err, "the array is empty")
	lim := DefaultLimits
	lim.MaxBatch = 2
	_, err = ValidateAll(make([]Input, 3), decodeNow, lim)
	require.ErrorContains(t, err, "the batch has 3 events")
	_, err = ValidateAll([]Input{{Name: "a"}, {}}, decodeNow, DefaultLimits)
	require.EqualError(t, err, `event 1: field "event_name": missing; accepted: a non-empty string (nothing of this batch was written)`)
	evs, err := ValidateAll([]Input{{Name: "a"}, {Name: "a", State: StateStop}}, decodeNow, DefaultLimits)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, 2.0, evs[1].Value)
}
