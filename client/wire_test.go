package client_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/judge"
)

// The client declares the wire types of the listing and the judge's report
// so that it does not build the server in. These tests hold them to the
// server's: the same JSON fields, and an answer read and written back by
// the client unchanged.

func TestWireFieldsMatchTheServer(t *testing.T) {
	for _, tc := range []struct {
		server, client any
	}{
		{events.ListResult{}, client.ListResult{}},
		{judge.Report{}, client.AnalysisReport{}},
	} {
		server, client := jsonFields(reflect.TypeOf(tc.server), ""), jsonFields(reflect.TypeOf(tc.client), "")
		// Where the server passes JSON through as it is (metadata and
		// links are json.RawMessage), the client may spell it out.
		client = slices.DeleteFunc(client, func(f string) bool {
			parent := f[:max(strings.LastIndex(f, "."), 0)]
			return !slices.Contains(server, f) && slices.Contains(opaque(server), parent)
		})
		require.Equal(t, server, client, "JSON fields of %T (server) and %T (client)", tc.server, tc.client)
	}
}

func TestWireRoundTrip(t *testing.T) {
	d, p := 300.0, 0.01
	list := events.ListResult{Events: []events.Logged{{
		ID: "2", Name: "deploy", State: "stop", Timestamp: "2026-11-25T10:05:00.000Z", Value: 2,
		Labels: map[string]string{"service": "checkout"}, Metadata: json.RawMessage(`{"commit":"9f2c1e7","n":3,"nested":{"a":[1]}}`),
		Links: json.RawMessage(`[{"href":"https://ci.example/run/42","text":"pipeline"}]`), ReceivedAt: "2026-11-25T10:05:00.010Z",
		PairID: "1", Duration: &d, Open: true,
	}}, NextCursor: "abc"}
	roundTrip[client.ListResult](t, list)

	rep := judge.Report{
		Verdict: judge.OutcomeMarginal, Score: 50, Reason: "r",
		Window: judge.ReportWindow{Start: "s", End: "e", Step: "15s", Points: 61,
			Event: &judge.WindowEvent{ID: "7", Name: "checkout-20", Labels: map[string]string{"a": "b"}, Timestamp: "t", Open: true}},
		Confidence: 0.98, Thresholds: judge.ReportThresholds{Pass: 95, Marginal: 75},
		Metrics: []judge.MetricReport{{
			Name: "m", Classification: "High", Reason: "r", Critical: true, CriticalFailure: true, Direction: "increase", Weight: 2,
			PValue: &p, Effect: &p, EffectMeasure: "cles", Ratio: &p, Shift: &p, ConfidenceInterval: []float64{0.1, 0.2},
			CanaryPoints: 1, BaselinePoints: 2, CanarySeries: 3, BaselineSeries: 4,
			Queries: judge.Queries{Canary: "a", Baseline: "b"}, Warnings: []string{"w"},
		}},
		Event: &judge.RecordedEvent{Name: "analysis", ID: "8", Labels: map[string]string{"outcome": "marginal"}, Error: "e"},
	}
	got := roundTrip[client.AnalysisReport](t, rep)
	want, err := json.Marshal(rep)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got.Raw), "Raw is the answer as it came")
}

// roundTrip decodes the server's JSON of v as a T and checks that T writes
// it back unchanged.
func roundTrip[T any](t *testing.T, v any) T {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var c T
	require.NoError(t, json.Unmarshal(b, &c))
	back, err := json.Marshal(c)
	require.NoError(t, err)
	require.JSONEq(t, string(b), string(back))
	return c
}

// opaque lists the fields of fields that have none: raw JSON or values.
func opaque(fields []string) []string {
	var out []string
	for _, f := range fields {
		if !slices.ContainsFunc(fields, func(g string) bool { return strings.HasPrefix(g, f+".") || strings.HasPrefix(g, f+"[].") }) {
			out = append(out, f, f+"[]")
		}
	}
	return out
}

// jsonFields lists the JSON field paths of a type, e.g. "events[].labels".
func jsonFields(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() == "encoding/json" {
		return nil
	}
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := strings.TrimPrefix(prefix+"."+name, ".")
		out = append(out, path)
		out = append(out, jsonFields(f.Type, path)...)
	}
	slices.Sort(out)
	return out
}
