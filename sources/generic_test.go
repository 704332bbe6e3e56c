package sources

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNewGeneric: a mapping that cannot work is refused when it is loaded,
// with the field named.
func TestNewGeneric(t *testing.T) {
	ok := GenericSpec{Name: "deploys", EventName: "deploy", Labels: map[string]string{"service": "$.service"}}
	_, err := NewGeneric(ok)
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		edit   func(*GenericSpec)
		errHas string
	}{
		{"bad name", func(s *GenericSpec) { s.Name = "My Hook" }, `name: "My Hook" is not accepted`},
		{"no event name", func(s *GenericSpec) { s.EventName = "" }, "event_name: missing"},
		{"bad JSONPath", func(s *GenericSpec) { s.Labels = map[string]string{"service": "$.service["} }, `labels.service: "$.service[" is not a JSONPath`},
		{"bad event name path", func(s *GenericSpec) { s.EventName = "$..[" }, `event_name: "$..[" is not a JSONPath`},
		{"unknown state", func(s *GenericSpec) { s.State = "begin" }, `state: "begin" is not a state; accepted: start, stop, or a JSONPath`},
		{"unknown mapped state", func(s *GenericSpec) { s.State = "$.status"; s.States = map[string]string{"ok": "done"} }, `states.ok: "done" is not a state`},
		{"states without a path", func(s *GenericSpec) { s.States = map[string]string{"ok": "stop"} }, "states: set, but state is not a JSONPath"},
		{"literal timestamp", func(s *GenericSpec) { s.Timestamp = "now" }, `timestamp: "now" is not a JSONPath`},
		{"bad label name", func(s *GenericSpec) { s.Labels = map[string]string{"bad-key": "$.x"} }, `labels.bad-key: "bad-key" is not a label name`},
		{"reserved label", func(s *GenericSpec) { s.Labels = map[string]string{"event_state": "$.x"} }, `labels.event_state`},
		{"bad metadata path", func(s *GenericSpec) { s.Metadata = map[string]string{"x": "$[?"} }, `metadata.x: "$[?" is not a JSONPath`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := ok
			spec.Labels = map[string]string{"service": "$.service"}
			tc.edit(&spec)
			_, err := NewGeneric(spec)
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}

func TestGenericConvert(t *testing.T) {
	g, err := NewGeneric(GenericSpec{Name: "ci", EventName: "$.job", State: "$.phase", Timestamp: "$.at", ID: "$.run",
		Labels: map[string]string{"service": "$.service", "attempt": "$.attempt", "ok": "$.ok", "env": "prod", "none": "$.absent"}})
	require.NoError(t, err)
	conv, err := g.Convert([]byte(`{"job":"migrate","phase":"stop","at":"2026-11-25T10:00:00Z","run":42,"service":"orders","attempt":2.0,"ok":true}`))
	require.NoError(t, err)
	require.Len(t, conv.Events, 1)
	in := conv.Events[0]
	require.Equal(t, "migrate", in.Name)
	require.Equal(t, stop, in.State)
	require.Equal(t, "ci-stop-42", in.ID)
	require.Equal(t, int64(1795600800000), in.Time)
	require.Equal(t, map[string]string{"service": "orders", "attempt": "2", "ok": "true", "env": "prod"}, in.Attributes)

	for body, errHas := range map[string]string{
		`{"job":"migrate","phase":"begin"}`:            `field "state" value "begin" is not a state`,
		`{"job":"migrate","phase":"stop","at":"soon"}`: `field "timestamp" value "soon" is not a time`,
		`{"job":["a","b"],"phase":"stop"}`:             `field "event_name" is an array`,
		`not json`:                                     "the body is not JSON",
	} {
		_, err := g.Convert([]byte(body))
		require.ErrorContains(t, err, errHas, body)
	}
	multi, err := NewGeneric(GenericSpec{Name: "m", EventName: "x", Labels: map[string]string{"env": "$..env"}})
	require.NoError(t, err)
	_, err = multi.Convert([]byte(`{"a":{"env":"prod"},"b":{"env":"dev"}}`))
	require.ErrorContains(t, err, `field "labels.env" selects 2 values with $..env; accepted: a path that selects one value`)
}
