package judge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/events"
)

// The analysis service runs a Plan: it resolves the window, runs each
// metric's canary and baseline queries over it, classifies each metric
// (Classify), scores the canary (Score) and records the verdict as a change
// event. How queries run is the caller's: the service only needs a
// QueryFunc, so it works on any PromQL engine.

// QueryFunc evaluates a PromQL range query over [start, end] at step in the
// organization of ctx, as Prometheus's query_range does, and returns every
// series of the result. The caller owns the returned slices. It must be
// safe for concurrent use.
type QueryFunc func(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]Series, error)

// Series is one series of a range query: its labels and its float values,
// one per step at which it had one. Histogram samples are left out.
type Series struct {
	Labels labels.Labels
	Values []float64
}

// ServiceOptions configure a Service.
type ServiceOptions struct {
	// Query runs the PromQL range queries. Required.
	Query QueryFunc
	// Events is where windows are looked up and verdicts recorded. With
	// nil, windows must be explicit and nothing is recorded.
	Events *events.Service
	// MaxWindow bounds the length of a window (DefaultMaxWindow when 0).
	MaxWindow time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Service runs canary analyses. It is safe for concurrent use.
type Service struct {
	logger *slog.Logger
	opts   ServiceOptions
}

// NewService returns an analysis service.
func NewService(logger *slog.Logger, opts ServiceOptions) *Service {
	if opts.MaxWindow <= 0 {
		opts.MaxWindow = DefaultMaxWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{logger: logger, opts: opts}
}

// QueryError is a query that the engine could not evaluate. Err is the
// engine's error, for callers that map it to a status.
type QueryError struct {
	// Field names the query in the request, e.g. metrics[0].canary.
	Field string
	Noun  string
	Query string
	Err   error
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("%s %q value %s: the query failed: %v", e.Noun, e.Field, quote(e.Query), e.Err)
}

func (e *QueryError) Unwrap() error { return e.Err }

// AnalysisEventName is the name of the change event that records a verdict.
const AnalysisEventName = "analysis"

// Report is the answer to an analysis: the verdict on the canary and each
// metric's classification with the queries that were run.
type Report struct {
	// Verdict is pass, marginal or fail.
	Verdict Outcome `json:"verdict"`
	// Score is the weighted share of passing metrics, 0 to 100.
	Score float64 `json:"score"`
	// Reason says in words why the canary got its verdict.
	Reason     string           `json:"reason"`
	Window     ReportWindow     `json:"window"`
	Confidence float64          `json:"confidence"`
	Thresholds ReportThresholds `json:"thresholds"`
	Metrics    []MetricReport   `json:"metrics"`
	// Event is the analysis event that recorded the verdict; nil when the
	// request asked for none.
	Event *RecordedEvent `json:"event,omitempty"`
}

// ReportWindow is the window that was analyzed.
type ReportWindow struct {
	Start string `json:"start"`
	End   string `json:"end"`
	// Step is the query step, a Prometheus duration.
	Step string `json:"step"`
	// Points is the number of steps of each query.
	Points int `json:"points"`
	// Event is the start the window was taken from.
	Event *WindowEvent `json:"event,omitempty"`
}

// WindowEvent is the start event a window was taken from.
type WindowEvent struct {
	ID        string            `json:"id"`
	Name      string            `json:"event_name"`
	Labels    map[string]string `json:"labels"`
	Timestamp string            `json:"timestamp"`
	// Open is true when the event has no stop yet: the window ends now.
	Open bool `json:"open"`
}

// ReportThresholds are the score thresholds applied.
type ReportThresholds struct {
	Pass     float64 `json:"pass"`
	Marginal float64 `json:"marginal"`
}

// MetricReport is one metric of a Report. Numbers that are not defined
// (no data, a mean ratio with a zero mean) are null.
type MetricReport struct {
	Name string `json:"name"`
	// Classification is Pass, High, Low or NoData, as Kayenta names them.
	Classification string `json:"classification"`
	Reason         string `json:"reason"`
	// Critical is the request's flag; CriticalFailure is set when this
	// metric alone failed the canary.
	Critical        bool    `json:"critical"`
	CriticalFailure bool    `json:"critical_failure"`
	Direction       string  `json:"direction"`
	Weight          float64 `json:"weight"`
	// PValue is the Mann-Whitney p-value; null when no test was needed.
	PValue *float64 `json:"p_value"`
	// Effect is the effect size by EffectMeasure; Ratio the mean ratio.
	Effect        *float64 `json:"effect"`
	EffectMeasure string   `json:"effect_measure"`
	Ratio         *float64 `json:"ratio"`
	// Shift is the Hodges-Lehmann estimate of canary minus baseline, and
	// ConfidenceInterval its interval at the request's confidence.
	Shift              *float64  `json:"shift"`
	ConfidenceInterval []float64 `json:"confidence_interval"`
	// CanaryPoints and BaselinePoints count the finite values compared.
	CanaryPoints   int `json:"canary_points"`
	BaselinePoints int `json:"baseline_points"`
	// CanarySeries and BaselineSeries count the series the queries returned.
	CanarySeries   int      `json:"canary_series"`
	BaselineSeries int      `json:"baseline_series"`
	Queries        Queries  `json:"queries"`
	Warnings       []string `json:"warnings,omitempty"`
}

// Queries are the PromQL expressions run for a metric.
type Queries struct {
	Canary   string `json:"canary"`
	Baseline string `json:"baseline"`
}

// RecordedEvent is the change event a verdict was recorded as, or why it
// could not be.
type RecordedEvent struct {
	Name   string            `json:"event_name"`
	ID     string            `json:"id,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	Error  string            `json:"error,omitempty"`
}

// maxConcurrentQueries bounds the queries one analysis runs at once.
const maxConcurrentQueries = 8

// side is the result of one query of a metric.
type side struct {
	values []float64
	series []Series
	err    error
}

// Analyze runs the analysis p for the organization org. Errors are a
// *RequestError (the request as given cannot be analyzed), a *WindowError
// (its event is missing or its window unusable), a *QueryError, or an error
// of the event log. A verdict that cannot be recorded is reported in
// Report.Event, not as an error.
func (s *Service) Analyze(ctx context.Context, org string, p *Plan) (*Report, error) {
	now := s.opts.Now()
	w, err := s.window(ctx, org, p, now)
	if err != nil {
		return nil, err
	}
	c := checker{noun: p.noun, flat: p.flat}

	results := make([][2]side, len(p.Metrics))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxConcurrentQueries)
	for i, m := range p.Metrics {
		for j, q := range []string{m.Canary, m.Baseline} {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				series, err := s.opts.Query(ctx, q, w.Start, w.End, w.Step)
				results[i][j] = side{series: series, err: err}
				for _, ser := range series {
					results[i][j].values = append(results[i][j].values, ser.Values...)
				}
			})
		}
	}
	wg.Wait()

	rep := &Report{
		Window: ReportWindow{
			Start:  formatTime(w.Start),
			End:    formatTime(w.End),
			Step:   model.Duration(w.Step).String(),
			Points: w.Points(),
		},
		Confidence: p.Confidence,
		Thresholds: ReportThresholds{Pass: p.Thresholds.Pass, Marginal: p.Thresholds.Marginal},
		Metrics:    make([]MetricReport, 0, len(p.Metrics)),
	}
	if ev := w.Event; ev != nil {
		rep.Window.Event = &WindowEvent{ID: ev.ID, Name: ev.Name, Labels: ev.Labels, Timestamp: ev.Timestamp, Open: ev.Open}
	}
	verdicts := make([]MetricVerdict, 0, len(p.Metrics))
	for i, m := range p.Metrics {
		for j, field := range []string{"canary", "baseline"} {
			if err := results[i][j].err; err != nil {
				return nil, &QueryError{Field: c.field(fmt.Sprintf("metrics[%d].%s", i, field)), Noun: c.noun, Query: []string{m.Canary, m.Baseline}[j], Err: err}
			}
		}
		canary, baseline := results[i][0], results[i][1]
		v, err := Classify(canary.values, baseline.values, m.Options)
		if err != nil {
			return nil, c.errorf(fmt.Sprintf("metrics[%d]", i), quote(m.Name), "options accepted by the judge", "%v", err)
		}
		verdicts = append(verdicts, MetricVerdict{Name: m.Name, Weight: m.Weight, Verdict: v})
		rep.Metrics = append(rep.Metrics, metricReport(m, v, canary, baseline))
	}
	rep.Score, rep.Verdict = Score(verdicts, p.Thresholds)
	rep.Reason = summarize(verdicts, rep.Score, rep.Verdict, p.Thresholds)

	if p.Record && s.opts.Events != nil {
		rep.Event = s.record(ctx, org, p, w, rep, now)
	}
	windowEvent := ""
	if w.Event != nil {
		windowEvent = w.Event.Name
	}
	s.logger.Info("canary analysis", "org", org, "verdict", rep.Verdict, "score", rep.Score,
		"window_event", windowEvent, "window_start", rep.Window.Start, "window_end", rep.Window.End, "metrics", len(rep.Metrics))
	return rep, nil
}

// classNames are Kayenta's names of the classes.
var classNames = map[Class]string{ClassPass: "Pass", ClassHigh: "High", ClassLow: "Low", ClassNoData: "NoData"}

func metricReport(m MetricPlan, v Verdict, canary, baseline side) MetricReport {
	r := MetricReport{
		Name:            m.Name,
		Classification:  classNames[v.Class],
		Reason:          v.Reason,
		Critical:        m.Options.Critical,
		CriticalFailure: v.Critical,
		Direction:       m.Options.Direction.String(),
		Weight:          m.Weight,
		Effect:          finite(v.Effect),
		EffectMeasure:   m.Options.Measure.String(),
		Ratio:           finite(v.Ratio),
		CanaryPoints:    countFinite(canary.values),
		BaselinePoints:  countFinite(baseline.values),
		CanarySeries:    len(canary.series),
		BaselineSeries:  len(baseline.series),
		Queries:         Queries{Canary: m.Canary, Baseline: m.Baseline},
	}
	if v.Test != nil {
		r.PValue = finite(v.Test.PValue)
		r.Shift = finite(v.Test.Shift)
		r.ConfidenceInterval = []float64{v.Test.Lower, v.Test.Upper}
	}
	for _, sd := range []struct {
		name string
		s    side
	}{{"canary", canary}, {"baseline", baseline}} {
		if n := len(sd.s.series); n > 1 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("the %s query returned %d series (%s, ...); their values were pooled: aggregate it to one series, e.g. with sum(...)",
				sd.name, n, sd.s.series[0].Labels))
		}
	}
	return r
}

// finite returns a pointer to f, or nil (JSON null) when f is NaN or
// infinite: encoding/json cannot encode those.
func finite(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

func countFinite(vs []float64) int {
	n := 0
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			n++
		}
	}
	return n
}

// summarize says why Score gave its outcome.
func summarize(vs []MetricVerdict, score float64, out Outcome, t Thresholds) string {
	var critical []string
	noData := 0
	for _, v := range vs {
		if v.Critical && v.Class != ClassPass {
			critical = append(critical, fmt.Sprintf("%q is %s", v.Name, classNames[v.Class]))
		}
		if v.Class == ClassNoData && !v.NoDataFails {
			noData++
		}
	}
	switch {
	case len(critical) > 0:
		return "critical metric " + strings.Join(critical, ", critical metric ") + ": the canary fails"
	case float64(noData) >= noDataFailShare*float64(len(vs)):
		return fmt.Sprintf("%d of %d metrics have no data (half or more): the canary fails", noData, len(vs))
	}
	switch out {
	case OutcomePass:
		return fmt.Sprintf("score %s is at or above the pass threshold %s", fmtNum(score), fmtNum(t.Pass))
	case OutcomeMarginal:
		return fmt.Sprintf("score %s is below the pass threshold %s and at or above the marginal threshold %s", fmtNum(score), fmtNum(t.Pass), fmtNum(t.Marginal))
	}
	return fmt.Sprintf("score %s is below the marginal threshold %s", fmtNum(score), fmtNum(t.Marginal))
}

// record writes the verdict as the change event "analysis": a start at the
// window's start and a stop at its end, so that it draws as a region over
// the window judged. Its labels are the window event's, the request's,
// outcome, score (rounded) and window_event (the window event's name); its
// metadata holds the verdict and each metric's classification. The ids are
// derived from all of that, so an analysis repeated with the same outcome
// over the same window is stored once.
func (s *Service) record(ctx context.Context, org string, p *Plan, w Window, rep *Report, now time.Time) *RecordedEvent {
	lbls := map[string]string{}
	if w.Event != nil {
		maps.Copy(lbls, w.Event.Labels)
		lbls["window_event"] = w.Event.Name
	}
	maps.Copy(lbls, p.Labels)
	lbls["outcome"] = string(rep.Verdict)
	lbls["score"] = strconv.Itoa(int(math.Round(rep.Score)))

	type metricMeta struct {
		Name           string   `json:"name"`
		Classification string   `json:"classification"`
		Critical       bool     `json:"critical,omitempty"`
		PValue         *float64 `json:"p_value"`
		Effect         *float64 `json:"effect"`
	}
	meta := struct {
		Source  string       `json:"source"`
		Verdict Outcome      `json:"verdict"`
		Score   float64      `json:"score"`
		Reason  string       `json:"reason"`
		Window  ReportWindow `json:"window"`
		Metrics []metricMeta `json:"metrics"`
	}{Source: "analysis", Verdict: rep.Verdict, Score: rep.Score, Reason: rep.Reason, Window: rep.Window}
	for _, m := range rep.Metrics {
		meta.Metrics = append(meta.Metrics, metricMeta{Name: m.Name, Classification: m.Classification, Critical: m.Critical, PValue: m.PValue, Effect: m.Effect})
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return &RecordedEvent{Name: AnalysisEventName, Error: err.Error()}
	}

	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%d\x00", w.Start.UnixMilli(), w.End.UnixMilli())
	for _, k := range slices.Sorted(maps.Keys(lbls)) {
		fmt.Fprintf(h, "%s\x00%s\x00", k, lbls[k])
	}
	h.Write(metaJSON)
	id := "analysis-" + hex.EncodeToString(h.Sum(nil))[:24]

	obj := func(st events.State, t time.Time) map[string]any {
		return map[string]any{
			"id": id + "-" + string(st), "event_name": AnalysisEventName, "event_state": string(st),
			"timestamp": t.UnixMilli(), "attributes": lbls, "metadata": json.RawMessage(metaJSON),
		}
	}
	body, err := json.Marshal([]map[string]any{obj(events.StateStart, w.Start), obj(events.StateStop, w.End)})
	if err != nil {
		return &RecordedEvent{Name: AnalysisEventName, Error: err.Error()}
	}
	fail := func(err error) *RecordedEvent {
		s.logger.Warn("record analysis", "org", org, "err", err)
		return &RecordedEvent{Name: AnalysisEventName, Labels: lbls, Error: "the verdict was not recorded: " + err.Error()}
	}
	evs, err := events.Decode(body, now, s.opts.Events.Limits())
	if err != nil {
		return fail(err)
	}
	res, err := s.opts.Events.Write(ctx, org, evs)
	if err != nil {
		return fail(err)
	}
	return &RecordedEvent{Name: AnalysisEventName, ID: res[0].ID, Labels: lbls}
}
