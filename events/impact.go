package events

// Impact is what a change did to the golden signals of what it changed, as
// the impact scorer found (package impact, docs/impact.md). Listed events
// carry it once they are scored. Numbers that are not defined (no data, a
// ratio with a zero denominator) are null.
type Impact struct {
	// Verdict is degraded, improved, no_change or no_data.
	Verdict string `json:"verdict"`
	// ScoredAt is when the event was scored (RFC 3339).
	ScoredAt string `json:"scored_at"`
	// Score is the judge's score of the signals with data, 0 to 100 (100:
	// none degraded); null when no signal had data.
	Score *float64 `json:"score"`
	// Provisional is set on a score taken before the after window ended
	// (for an alert, or on demand): it is not stored.
	Provisional bool `json:"provisional,omitempty"`
	// Window is what was compared.
	Window  ImpactWindow   `json:"window"`
	Signals []SignalImpact `json:"signals"`
}

// ImpactWindow is the time compared: [BeforeStart, Start] against
// (Start, AfterEnd], RFC 3339.
type ImpactWindow struct {
	BeforeStart string `json:"before_start"`
	Start       string `json:"start"`
	AfterEnd    string `json:"after_end"`
}

// SignalImpact is one signal of an Impact.
type SignalImpact struct {
	Name string `json:"name"`
	// Classification is the canary judge's: Pass, High, Low or NoData
	// (after compared with before).
	Classification string `json:"classification"`
	// Verdict is the classification read with the signal's direction:
	// degraded, improved, no_change or no_data.
	Verdict   string `json:"verdict"`
	Direction string `json:"direction"`
	// PValue is the Mann-Whitney p-value; null when no test was run.
	PValue *float64 `json:"p_value"`
	// Before and After are the medians of the two windows.
	Before *float64 `json:"before"`
	After  *float64 `json:"after"`
	// Effect is the judge's effect size: mean(after)/mean(before).
	Effect *float64 `json:"effect"`
	// BeforePoints and AfterPoints count the values compared.
	BeforePoints int    `json:"before_points"`
	AfterPoints  int    `json:"after_points"`
	Reason       string `json:"reason"`
}

// The verdicts of an Impact and of its signals.
const (
	VerdictDegraded = "degraded"
	VerdictImproved = "improved"
	VerdictNoChange = "no_change"
	VerdictNoData   = "no_data"
)
