package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// Verdicts of an analysis.
const (
	VerdictPass     = "pass"
	VerdictMarginal = "marginal"
	VerdictFail     = "fail"
)

// Analyze asks the server's canary judge for a verdict (POST
// .../analysis). request is the analysis request as JSON
// (docs/canary-judge.md), sent as it is: the server checks it, and a
// request it refuses is a *RejectedError naming the field. The answer is
// 200 with a report whatever the verdict. Retries are Write's; a retried
// request the server had already answered records a second analysis event.
func (c *Client) Analyze(ctx context.Context, request json.RawMessage) (AnalysisReport, error) {
	var rep AnalysisReport
	if err := c.send(ctx, http.MethodPost, "/analysis", nil, request, &rep); err != nil {
		return AnalysisReport{}, err
	}
	return rep, nil
}

// AnalysisReport is the judge's answer: the verdict on the canary and each
// metric's classification with the queries that were run.
type AnalysisReport struct {
	// Verdict is VerdictPass, VerdictMarginal or VerdictFail.
	Verdict string `json:"verdict"`
	// Score is the weighted share of passing metrics, 0 to 100.
	Score float64 `json:"score"`
	// Reason says in words why the canary got its verdict.
	Reason     string             `json:"reason"`
	Window     AnalysisWindow     `json:"window"`
	Confidence float64            `json:"confidence"`
	Thresholds AnalysisThresholds `json:"thresholds"`
	Metrics    []AnalysisMetric   `json:"metrics"`
	// Event is the change event that recorded the verdict; nil when the
	// request asked for none.
	Event *AnalysisEvent `json:"event,omitempty"`

	// Raw is the server's answer as it came.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes a report and keeps the answer in Raw.
func (r *AnalysisReport) UnmarshalJSON(b []byte) error {
	type plain AnalysisReport
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = AnalysisReport(p)
	r.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// AnalysisWindow is the window that was analyzed.
type AnalysisWindow struct {
	Start string `json:"start"`
	End   string `json:"end"`
	// Step is the query step, a Prometheus duration.
	Step string `json:"step"`
	// Points is the number of steps of each query.
	Points int `json:"points"`
	// Event is the start the window was taken from; nil for explicit times.
	Event *AnalysisWindowEvent `json:"event,omitempty"`
}

// AnalysisWindowEvent is the start event a window was taken from.
type AnalysisWindowEvent struct {
	ID        string            `json:"id"`
	Name      string            `json:"event_name"`
	Labels    map[string]string `json:"labels"`
	Timestamp string            `json:"timestamp"`
	// Open is true when the event has no stop yet: the window ends now.
	Open bool `json:"open"`
}

// AnalysisThresholds are the score thresholds applied.
type AnalysisThresholds struct {
	Pass     float64 `json:"pass"`
	Marginal float64 `json:"marginal"`
}

// AnalysisMetric is one metric of a report. Numbers that are not defined
// (no data, a mean ratio with a zero mean) are nil.
type AnalysisMetric struct {
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
	// PValue is the Mann-Whitney p-value; nil when no test was needed.
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
	CanarySeries   int             `json:"canary_series"`
	BaselineSeries int             `json:"baseline_series"`
	Queries        AnalysisQueries `json:"queries"`
	Warnings       []string        `json:"warnings,omitempty"`
}

// AnalysisQueries are the PromQL expressions run for a metric.
type AnalysisQueries struct {
	Canary   string `json:"canary"`
	Baseline string `json:"baseline"`
}

// AnalysisEvent is the change event a verdict was recorded as, or why it
// could not be.
type AnalysisEvent struct {
	Name   string            `json:"event_name"`
	ID     string            `json:"id,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	Error  string            `json:"error,omitempty"`
}
