package judge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tidemark/tidemark/events"
)

// An analysis request, as clients send it (docs/canary-judge.md has the
// reference): a JSON object, or the same fields flattened into URL query
// parameters or Flagger webhook metadata (ParseForm).

// Request is the wire form of an analysis request. ParseRequest and
// ParseForm check it and turn it into a Plan.
type Request struct {
	Window     WindowSpec      `json:"window"`
	Step       json.RawMessage `json:"step,omitempty"`
	Confidence *float64        `json:"confidence,omitempty"`
	Thresholds *ThresholdsSpec `json:"thresholds,omitempty"`
	Metrics    []MetricSpec    `json:"metrics"`
	// Labels are added to the labels of the analysis event.
	Labels map[string]string `json:"labels,omitempty"`
	// Record, true unless set to false, writes the analysis event.
	Record *bool `json:"record,omitempty"`
}

// WindowSpec names the window: an event (EventName and Match) or explicit
// times (Start and, optionally, End).
type WindowSpec struct {
	EventName string            `json:"event_name,omitempty"`
	Match     map[string]string `json:"match,omitempty"`
	Start     json.RawMessage   `json:"start,omitempty"`
	End       json.RawMessage   `json:"end,omitempty"`
}

// ThresholdsSpec are the score thresholds, 0 to 100.
type ThresholdsSpec struct {
	Pass     *float64 `json:"pass,omitempty"`
	Marginal *float64 `json:"marginal,omitempty"`
}

// MetricSpec is one metric to compare. The fields after Baseline map to
// Options.
type MetricSpec struct {
	Name             string   `json:"name,omitempty"`
	Canary           string   `json:"canary"`
	Baseline         string   `json:"baseline"`
	Direction        string   `json:"direction,omitempty"`
	Critical         bool     `json:"critical,omitempty"`
	Weight           *float64 `json:"weight,omitempty"`
	NoData           string   `json:"nodata,omitempty"`
	EffectMeasure    string   `json:"effect_measure,omitempty"`
	AllowedIncrease  *float64 `json:"allowed_increase,omitempty"`
	AllowedDecrease  *float64 `json:"allowed_decrease,omitempty"`
	CriticalIncrease *float64 `json:"critical_increase,omitempty"`
	CriticalDecrease *float64 `json:"critical_decrease,omitempty"`
	Tolerance        *float64 `json:"tolerance,omitempty"`
}

// Defaults and bounds of a request.
const (
	DefaultPassThreshold     = 95
	DefaultMarginalThreshold = 75
	// MaxMetrics is the most metrics one request may compare.
	MaxMetrics = 50
	// maxQueryBytes bounds one PromQL expression.
	maxQueryBytes = 16 << 10
)

// Plan is a checked request, ready for Service.Analyze.
type Plan struct {
	Window WindowPlan
	// Step is the query resolution; 0 lets Analyze choose it from the
	// window's length.
	Step       time.Duration
	Confidence float64
	Thresholds Thresholds
	Metrics    []MetricPlan
	Labels     map[string]string
	Record     bool
	// noun and flat say how fields are named in errors (see RequestError).
	noun string
	flat bool
}

// WindowPlan is a window to resolve when the analysis runs: the latest
// start of an event, or explicit times.
type WindowPlan struct {
	EventName string
	Match     map[string]string
	// Start and End are used when EventName is empty; End defaults to now.
	Start, End TimeRef
}

// TimeRef is a point in time given absolutely or relative to the time of
// the analysis ("now", "now-15m"). The zero value is unset.
type TimeRef struct {
	set bool
	abs time.Time
	// rel is the offset from now, for a relative time.
	rel      time.Duration
	relative bool
}

// IsZero reports whether no time was given.
func (t TimeRef) IsZero() bool { return !t.set }

// At resolves t at now.
func (t TimeRef) At(now time.Time) time.Time {
	if t.relative {
		return now.Add(-t.rel)
	}
	return t.abs
}

// MetricPlan is one checked metric.
type MetricPlan struct {
	Name     string
	Canary   string
	Baseline string
	Weight   float64
	Options  Options
}

// RequestError is a request that cannot be analyzed as given (an HTTP 400).
// It names the field, the value and what would be accepted.
type RequestError struct {
	// Noun is how fields are called: "field", "parameter", "metadata key".
	Noun     string
	Field    string
	Value    string
	Problem  string
	Accepted string
}

func (e *RequestError) Error() string {
	var b strings.Builder
	if e.Field != "" {
		fmt.Fprintf(&b, "%s %q", e.Noun, e.Field)
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
	return b.String()
}

// quote renders a value for an error message, shortened when long.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}

// ParseRequest decodes and checks an analysis request given as JSON.
// Every error is a *RequestError. Queries are checked with Prometheus's
// parser with default options, as Tidemark's engine parses them.
func ParseRequest(body []byte) (*Plan, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &RequestError{Noun: "field", Problem: "the request body is empty", Accepted: "an analysis request as a JSON object (see docs/canary-judge.md)"}
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &RequestError{Noun: "field", Problem: "unexpected data after the JSON object", Accepted: "one analysis request as a JSON object"}
	}
	return req.plan("field", false)
}

// acceptedFields lists the fields of each object of a request.
const acceptedFields = "window, step, confidence, thresholds, metrics, labels, record; " +
	"in window: event_name, match, start, end; in thresholds: pass, marginal; " +
	"in metrics[]: name, canary, baseline, direction, critical, weight, nodata, effect_measure, " +
	"allowed_increase, allowed_decrease, critical_increase, critical_decrease, tolerance"

var unknownFieldRE = regexp.MustCompile(`^json: unknown field "(.*)"$`)

// jsonError turns an encoding/json error into a RequestError.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &RequestError{Noun: "field", Problem: fmt.Sprintf("the body is not valid JSON: %v (at byte %d)", se, se.Offset), Accepted: "an analysis request as a JSON object"}
	case errors.As(err, &te):
		if te.Field == "" {
			return &RequestError{Noun: "field", Problem: fmt.Sprintf("the body is a JSON %s", te.Value), Accepted: "an analysis request as a JSON object"}
		}
		return &RequestError{Noun: "field", Field: te.Field, Problem: fmt.Sprintf("a JSON %s is not accepted here", te.Value), Accepted: "a JSON " + jsonKind(te.Type.String())}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &RequestError{Noun: "field", Problem: "the body ends before the JSON object does", Accepted: "an analysis request as a JSON object"}
	}
	if m := unknownFieldRE.FindStringSubmatch(err.Error()); m != nil {
		return &RequestError{Noun: "field", Field: m[1], Problem: "unknown field", Accepted: acceptedFields}
	}
	return &RequestError{Noun: "field", Problem: strings.TrimPrefix(err.Error(), "json: "), Accepted: "an analysis request as a JSON object"}
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "map["):
		return "object of strings"
	case strings.HasPrefix(goType, "[]judge.MetricSpec"):
		return "array of metric objects"
	case strings.HasPrefix(goType, "judge."):
		return "object"
	case goType == "string":
		return "string"
	case goType == "bool":
		return "boolean (true or false)"
	case goType == "float64":
		return "number"
	}
	return goType
}

// Flat keys of ParseForm, besides match.<label> and labels.<name>.
var formKeys = []string{
	"request", "event_name", "start", "end", "step", "confidence", "pass", "marginal", "record",
	"name", "canary", "baseline", "direction", "critical", "weight", "nodata", "effect_measure",
	"allowed_increase", "allowed_decrease", "critical_increase", "critical_decrease", "tolerance",
}

// ParseForm reads an analysis request of one metric given as flat keys: the
// query parameters of a GET, or the metadata of a Flagger webhook. noun
// names the keys in errors ("parameter", "metadata key"). The key request
// holds a whole request as JSON and then must be the only key. Every error
// is a *RequestError.
func ParseForm(form url.Values, noun string) (*Plan, error) {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bad := func(k, v, problem, accepted string) error {
		return &RequestError{Noun: noun, Field: k, Value: v, Problem: problem, Accepted: accepted}
	}
	if vs, ok := form["request"]; ok {
		if len(keys) > 1 {
			others := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "request" })
			return nil, bad("request", "", fmt.Sprintf("cannot be combined with %s", strings.Join(others, ", ")),
				"either request (a whole request as JSON) or the flat keys of one metric")
		}
		if len(vs) != 1 {
			return nil, bad("request", "", fmt.Sprintf("given %d times", len(vs)), "once")
		}
		plan, err := ParseRequest([]byte(vs[0]))
		if err != nil {
			return nil, &RequestError{Noun: noun, Field: "request", Problem: err.Error()}
		}
		return plan, nil
	}

	var req Request
	var m MetricSpec
	hasMetric := false
	str := func(v string) json.RawMessage { b, _ := json.Marshal(v); return b }
	for _, k := range keys {
		vs := form[k]
		if len(vs) != 1 {
			return nil, bad(k, "", fmt.Sprintf("given %d times", len(vs)), "once")
		}
		v := vs[0]
		num := func(dst **float64) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return bad(k, quote(v), "not a number", "a decimal number")
			}
			*dst = &f
			return nil
		}
		boolean := func() (bool, error) {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return false, bad(k, quote(v), "not a boolean", "true or false")
			}
			return b, nil
		}
		var err error
		switch {
		case strings.HasPrefix(k, "match."):
			if req.Window.Match == nil {
				req.Window.Match = map[string]string{}
			}
			req.Window.Match[strings.TrimPrefix(k, "match.")] = v
		case strings.HasPrefix(k, "labels."):
			if req.Labels == nil {
				req.Labels = map[string]string{}
			}
			req.Labels[strings.TrimPrefix(k, "labels.")] = v
		case k == "event_name":
			req.Window.EventName = v
		case k == "start":
			req.Window.Start = str(v)
		case k == "end":
			req.Window.End = str(v)
		case k == "step":
			req.Step = str(v)
		case k == "confidence":
			err = num(&req.Confidence)
		case k == "pass" || k == "marginal":
			if req.Thresholds == nil {
				req.Thresholds = &ThresholdsSpec{}
			}
			if k == "pass" {
				err = num(&req.Thresholds.Pass)
			} else {
				err = num(&req.Thresholds.Marginal)
			}
		case k == "record":
			var b bool
			b, err = boolean()
			req.Record = &b
		default:
			hasMetric = true
			switch k {
			case "name":
				m.Name = v
			case "canary":
				m.Canary = v
			case "baseline":
				m.Baseline = v
			case "direction":
				m.Direction = v
			case "critical":
				m.Critical, err = boolean()
			case "weight":
				err = num(&m.Weight)
			case "nodata":
				m.NoData = v
			case "effect_measure":
				m.EffectMeasure = v
			case "allowed_increase":
				err = num(&m.AllowedIncrease)
			case "allowed_decrease":
				err = num(&m.AllowedDecrease)
			case "critical_increase":
				err = num(&m.CriticalIncrease)
			case "critical_decrease":
				err = num(&m.CriticalDecrease)
			case "tolerance":
				err = num(&m.Tolerance)
			default:
				return nil, bad(k, "", "unknown key", strings.Join(formKeys, ", ")+", match.<label>, labels.<name>")
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if hasMetric {
		req.Metrics = []MetricSpec{m}
	}
	return req.plan(noun, true)
}

// checker names fields in errors the way the request was given.
type checker struct {
	noun string
	flat bool
}

// field names a field given by its JSON path ("metrics[0].canary"); a flat
// form has no objects and one metric, so only the last part is its key.
func (c checker) field(path string) string {
	if !c.flat {
		return path
	}
	for _, p := range []string{"window.", "thresholds.", "metrics[0]."} {
		path = strings.TrimPrefix(path, p)
	}
	return path
}

func (c checker) errorf(path, value, accepted, problem string, args ...any) error {
	return &RequestError{Noun: c.noun, Field: c.field(path), Value: value, Problem: fmt.Sprintf(problem, args...), Accepted: accepted}
}

// reservedLabels are labels of the analysis event that a request cannot set.
var reservedLabels = map[string]bool{"__name__": true, "event_name": true, "event_state": true, "outcome": true, "score": true, "window_event": true}

func (req *Request) plan(noun string, flat bool) (*Plan, error) {
	c := checker{noun: noun, flat: flat}
	p := &Plan{
		Confidence: DefaultConfidence,
		Thresholds: Thresholds{Pass: DefaultPassThreshold, Marginal: DefaultMarginalThreshold},
		Record:     true,
		noun:       noun,
		flat:       flat,
	}

	// Window.
	w := req.Window
	hasEvent := w.EventName != "" || len(w.Match) > 0
	hasTimes := len(w.Start) > 0 || len(w.End) > 0
	const acceptedWindow = "an event (event_name, and match with label values) or explicit times (start, and end or now)"
	switch {
	case hasEvent && hasTimes:
		return nil, c.errorf("window", "", acceptedWindow, "names both an event and explicit times")
	case !hasEvent && !hasTimes:
		return nil, c.errorf("window", "", acceptedWindow, "is missing")
	case hasEvent:
		if w.EventName == "" {
			return nil, c.errorf("window.event_name", "", "the name of a change event, e.g. checkout-20", "is required with window.match")
		}
		p.Window.EventName = w.EventName
		if len(w.Match) > 0 {
			p.Window.Match = make(map[string]string, len(w.Match))
		}
		for k, v := range w.Match {
			path := "window.match." + k
			if k == "event_name" || k == "event_state" {
				return nil, c.errorf(path, quote(v), "the event's own labels (attributes)", "is not a label to match: the window is the latest start of window.event_name")
			}
			if !model.LegacyValidation.IsValidLabelName(k) {
				return nil, c.errorf(path, quote(v), "label names matching [a-zA-Z_][a-zA-Z0-9_]*", "is not a label name")
			}
			p.Window.Match[k] = v
		}
	default:
		if len(w.Start) == 0 {
			return nil, c.errorf("window.start", "", "a time: RFC 3339, epoch seconds or milliseconds, \"now\" or \"now-15m\"", "is required with window.end")
		}
		var err error
		if p.Window.Start, err = c.timeRef("window.start", w.Start); err != nil {
			return nil, err
		}
		if len(w.End) > 0 {
			if p.Window.End, err = c.timeRef("window.end", w.End); err != nil {
				return nil, err
			}
		} else {
			p.Window.End = TimeRef{set: true, relative: true}
		}
	}

	// Step, confidence, thresholds.
	if len(req.Step) > 0 {
		d, err := c.duration("step", req.Step)
		if err != nil {
			return nil, err
		}
		p.Step = d
	}
	if req.Confidence != nil {
		v := *req.Confidence
		if !(v > 0 && v < 1) {
			return nil, c.errorf("confidence", fmtNum(v), "a number strictly between 0 and 1, e.g. 0.98", "is out of range")
		}
		p.Confidence = v
	}
	if t := req.Thresholds; t != nil {
		for _, f := range []struct {
			path string
			src  *float64
			dst  *float64
		}{{"thresholds.pass", t.Pass, &p.Thresholds.Pass}, {"thresholds.marginal", t.Marginal, &p.Thresholds.Marginal}} {
			if f.src == nil {
				continue
			}
			if !(*f.src >= 0 && *f.src <= 100) {
				return nil, c.errorf(f.path, fmtNum(*f.src), "a score from 0 to 100", "is out of range")
			}
			*f.dst = *f.src
		}
		if p.Thresholds.Marginal > p.Thresholds.Pass {
			return nil, c.errorf("thresholds.marginal", fmtNum(p.Thresholds.Marginal), "a marginal threshold at or below the pass threshold",
				"is above the pass threshold %s", fmtNum(p.Thresholds.Pass))
		}
	}

	// Labels of the analysis event, and whether to write it.
	for k, v := range req.Labels {
		path := "labels." + k
		if !model.LegacyValidation.IsValidLabelName(k) || strings.HasPrefix(k, "__") {
			return nil, c.errorf(path, quote(v), "label names matching [a-zA-Z_][a-zA-Z0-9_]*, not starting with __", "is not a label name")
		}
		if reservedLabels[k] {
			return nil, c.errorf(path, quote(v), "labels other than event_name, event_state, outcome, score and window_event", "is set by the judge")
		}
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels[k] = v
	}
	if req.Record != nil {
		p.Record = *req.Record
	}

	// Metrics.
	if len(req.Metrics) == 0 {
		return nil, c.errorf("metrics", "", "at least one metric with canary and baseline queries", "is missing")
	}
	if len(req.Metrics) > MaxMetrics {
		return nil, c.errorf("metrics", "", fmt.Sprintf("at most %d metrics", MaxMetrics), "has %d metrics", len(req.Metrics))
	}
	names := map[string]int{}
	for i, ms := range req.Metrics {
		mp, err := c.metric(i, ms, p.Confidence)
		if err != nil {
			return nil, err
		}
		if j, ok := names[mp.Name]; ok {
			return nil, c.errorf(fmt.Sprintf("metrics[%d].name", i), quote(mp.Name), "a name no other metric of the request has", "is the name of metrics[%d] too", j)
		}
		names[mp.Name] = i
		p.Metrics = append(p.Metrics, mp)
	}
	return p, nil
}

func (c checker) metric(i int, ms MetricSpec, confidence float64) (MetricPlan, error) {
	path := func(f string) string { return fmt.Sprintf("metrics[%d].%s", i, f) }
	mp := MetricPlan{Name: ms.Name, Canary: ms.Canary, Baseline: ms.Baseline, Weight: 1}
	if mp.Name == "" {
		mp.Name = fmt.Sprintf("metric-%d", i+1)
	}
	for _, q := range []struct{ field, expr string }{{"canary", ms.Canary}, {"baseline", ms.Baseline}} {
		if err := c.query(path(q.field), q.expr); err != nil {
			return mp, err
		}
	}
	o := Options{Critical: ms.Critical, Confidence: confidence}
	var err error
	if o.Direction, err = ParseDirection(ms.Direction); err != nil {
		return mp, c.errorf(path("direction"), quote(ms.Direction), "increase, decrease or either (the default)", "is not a direction")
	}
	if o.Missing, err = ParseMissingData(ms.NoData); err != nil {
		return mp, c.errorf(path("nodata"), quote(ms.NoData), "nodata (the default: left out of the score), fail or pass", "is not a missing-data policy")
	}
	if o.Measure, err = ParseEffectMeasure(ms.EffectMeasure); err != nil {
		return mp, c.errorf(path("effect_measure"), quote(ms.EffectMeasure), "meanRatio (the default) or cles", "is not an effect size measure")
	}
	if ms.Weight != nil {
		if w := *ms.Weight; !(w > 0) || math.IsInf(w, 0) {
			return mp, c.errorf(path("weight"), fmtNum(w), "a positive number (default 1)", "is not a weight")
		}
		mp.Weight = *ms.Weight
	}
	for _, f := range []struct {
		name string
		src  *float64
		dst  *float64
	}{
		{"allowed_increase", ms.AllowedIncrease, &o.AllowedIncrease},
		{"allowed_decrease", ms.AllowedDecrease, &o.AllowedDecrease},
		{"critical_increase", ms.CriticalIncrease, &o.CriticalIncrease},
		{"critical_decrease", ms.CriticalDecrease, &o.CriticalDecrease},
		{"tolerance", ms.Tolerance, &o.Tolerance},
	} {
		if f.src == nil {
			continue
		}
		if v := *f.src; !(v > 0) || math.IsInf(v, 0) {
			return mp, c.errorf(path(f.name), fmtNum(v), "a positive number (an effect size: 1.2 is 20% higher with meanRatio)", "is not accepted")
		}
		*f.dst = *f.src
	}
	if _, err := o.withDefaults(); err != nil {
		return mp, c.errorf(path("name"), quote(mp.Name), "options accepted by the judge", "%v", err)
	}
	mp.Options = o
	return mp, nil
}

// query checks a PromQL expression as a range query would.
func (c checker) query(path, q string) error {
	const accepted = "a PromQL expression of type instant vector or scalar, aggregated to one series, e.g. sum(rate(http_requests_total{track=\"canary\"}[1m]))"
	if strings.TrimSpace(q) == "" {
		return c.errorf(path, "", accepted, "is required")
	}
	if len(q) > maxQueryBytes {
		return c.errorf(path, quote(q), fmt.Sprintf("at most %d bytes", maxQueryBytes), "is %d bytes long", len(q))
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		return c.errorf(path, quote(q), accepted, "%v", err)
	}
	if t := expr.Type(); t != parser.ValueTypeVector && t != parser.ValueTypeScalar {
		return c.errorf(path, quote(q), accepted, "invalid expression type %q for range query, must be Scalar or instant Vector", parser.DocumentedType(t))
	}
	return nil
}

const acceptedTimes = `RFC 3339 ("2026-11-25T10:00:00Z"), epoch seconds or milliseconds (a number or a numeric string), "now" or "now-<duration>" ("now-15m")`

// timeRef parses a time given as a JSON string or number.
func (c checker) timeRef(path string, raw json.RawMessage) (TimeRef, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil {
			return TimeRef{}, c.errorf(path, string(raw), acceptedTimes, "is not a time")
		}
		ms, err := events.EpochToMillis(f)
		if err != nil {
			return TimeRef{}, c.errorf(path, string(raw), acceptedTimes, "is not a time: %v", err)
		}
		return TimeRef{set: true, abs: time.UnixMilli(ms)}, nil
	}
	t, err := ParseTime(s)
	if err != nil {
		return TimeRef{}, c.errorf(path, quote(s), acceptedTimes, "is not a time: %v", err)
	}
	return t, nil
}

// ParseTime parses "now", "now-<duration>", or any timestamp a change event
// may carry (events.ParseTimestamp: RFC 3339, epoch seconds or milliseconds
// in a string), so that a window is written the way its events are.
func ParseTime(s string) (TimeRef, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return TimeRef{set: true, relative: true}, nil
	}
	if rest, ok := strings.CutPrefix(s, "now-"); ok {
		d, err := model.ParseDuration(rest)
		if err != nil {
			return TimeRef{}, fmt.Errorf("%q is not a duration", rest)
		}
		return TimeRef{set: true, relative: true, rel: time.Duration(d)}, nil
	}
	ms, err := events.ParseTimestamp(s)
	if err != nil {
		return TimeRef{}, err
	}
	return TimeRef{set: true, abs: time.UnixMilli(ms)}, nil
}

// duration parses a step given as a Prometheus duration string ("15s",
// "1m") or a number of seconds.
func (c checker) duration(path string, raw json.RawMessage) (time.Duration, error) {
	const accepted = `a positive duration: a Prometheus duration ("15s", "1m") or a number of seconds`
	var d time.Duration
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		s = strings.TrimSpace(s)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			d = time.Duration(f * float64(time.Second))
		} else if md, err := model.ParseDuration(s); err == nil {
			d = time.Duration(md)
		} else {
			return 0, c.errorf(path, quote(s), accepted, "is not a duration")
		}
	} else {
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil {
			return 0, c.errorf(path, string(raw), accepted, "is not a duration")
		}
		if math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt64/float64(time.Second) {
			return 0, c.errorf(path, string(raw), accepted, "is out of range")
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < time.Millisecond {
		return 0, c.errorf(path, string(raw), accepted, "is shorter than 1ms")
	}
	return d, nil
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
