package judge

// The classification and the score follow Kayenta's NetflixACAJudge
// (github.com/spinnaker/kayenta, module kayenta-judge, now also under
// kayenta/ in github.com/spinnaker/spinnaker):
//
//   - classifiers/metric/MannWhitneyClassifier.scala, classify and compare:
//     no data first; identical samples, or a single value shared by both,
//     pass; otherwise the canary is High when the lower bound of the
//     confidence interval of the shift lies above the band
//     ±tolerance*|Hodges-Lehmann estimate| and the effect size is at least
//     allowedIncrease, Low when the upper bound lies below the band and the
//     effect size is at most allowedDecrease, each only if the metric's
//     direction allows it; an effect size that cannot be computed (NaN) is
//     not checked. A critical metric classified High (Low) is a critical
//     failure when its effect size is at least criticalIncrease (at most
//     criticalDecrease), or NaN.
//   - NetflixACAJudge.scala, classifyMetric: confidence 0.98, tolerance
//     0.25, direction "either", effect size measure "meanRatio" with
//     thresholds defaulting to 1.0 ("cles": 0.5), NaN values removed.
//   - stats/EffectSizes.scala: meanRatio is mean(canary)/mean(baseline), NaN
//     when either mean is 0; cles is U/(n*m).
//   - kayenta-mannwhitney, MannWhitney.scala: the interval and the estimate
//     by inverting the asymptotic test, ported from R's wilcox.test, which
//     MannWhitney in this package follows (see Result).
//   - scorers/WeightedSumScorer.scala and classifiers/score/
//     ThresholdScoreClassifier.scala: see Score.
//
// Where this package differs, on purpose:
//
//   - The shift is the exact Hodges-Lehmann estimate and the interval bounds
//     are the exact pairwise differences (see Result), where Kayenta finds
//     roots numerically with a fixed absolute tolerance, which is too coarse
//     for metrics of small magnitude.
//   - Kayenta adds Gaussian noise when both samples are constant; here the
//     interval of two constant samples is computed directly: the one shift.
//   - When the confidence cannot be reached with the samples at hand
//     (Result.Reachable is false; at 0.98, for instance, four values against
//     four, or a single value on either side), the metric passes. Kayenta
//     still compares the interval, which is then only the range of the
//     differences, and flags three values against three at a p-value of 0.08.
//   - The missing-data policy folds Kayenta's nanStrategy "replace" (Pass
//     when a sample is empty) and mustHaveData (NodataFailMetric) into one
//     option, MissingData. NaN and infinite values are always dropped.

import (
	"fmt"
	"math"
	"slices"
)

// Class is the classification of one metric.
type Class string

// The classes a metric can get.
const (
	// ClassPass: no significant difference in the forbidden direction.
	ClassPass Class = "pass"
	// ClassHigh: the canary is significantly higher than the baseline.
	ClassHigh Class = "high"
	// ClassLow: the canary is significantly lower than the baseline.
	ClassLow Class = "low"
	// ClassNoData: the canary or the baseline had no finite value.
	ClassNoData Class = "nodata"
)

// Direction says which change of a metric is bad.
type Direction int

// The directions. The zero value is DirectionEither, Kayenta's default.
const (
	// DirectionEither flags the canary both when higher and when lower.
	DirectionEither Direction = iota
	// DirectionIncrease flags the canary only when higher (latency, errors).
	DirectionIncrease
	// DirectionDecrease flags the canary only when lower (throughput).
	DirectionDecrease
)

// ParseDirection parses "either", "increase" or "decrease"; "" is "either".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "", "either":
		return DirectionEither, nil
	case "increase":
		return DirectionIncrease, nil
	case "decrease":
		return DirectionDecrease, nil
	}
	return 0, fmt.Errorf("judge: unknown direction %q (want increase, decrease or either)", s)
}

func (d Direction) String() string {
	switch d {
	case DirectionEither:
		return "either"
	case DirectionIncrease:
		return "increase"
	case DirectionDecrease:
		return "decrease"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// MarshalText implements encoding.TextMarshaler.
func (d Direction) MarshalText() ([]byte, error) {
	if d < DirectionEither || d > DirectionDecrease {
		return nil, fmt.Errorf("judge: invalid direction %d", int(d))
	}
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseDirection.
func (d *Direction) UnmarshalText(b []byte) error {
	v, err := ParseDirection(string(b))
	if err == nil {
		*d = v
	}
	return err
}

// MissingData says how a metric is classified when the canary or the
// baseline has no finite value.
type MissingData int

// The missing-data policies. The zero value is MissingNoData.
const (
	// MissingNoData classifies the metric NoData, which Score leaves out
	// (Kayenta's Nodata). A critical metric with no data fails the canary.
	MissingNoData MissingData = iota
	// MissingFail classifies the metric NoData and has Score count it as a
	// failed metric (Kayenta's mustHaveData, NodataFailMetric).
	MissingFail
	// MissingPass classifies the metric Pass, for metrics whose absence
	// means all is well, such as error counters that only appear on errors
	// (Kayenta's nanStrategy "replace").
	MissingPass
)

// ParseMissingData parses "nodata", "fail" or "pass"; "" is "nodata".
func ParseMissingData(s string) (MissingData, error) {
	switch s {
	case "", "nodata":
		return MissingNoData, nil
	case "fail":
		return MissingFail, nil
	case "pass":
		return MissingPass, nil
	}
	return 0, fmt.Errorf("judge: unknown missing-data policy %q (want nodata, fail or pass)", s)
}

func (m MissingData) String() string {
	switch m {
	case MissingNoData:
		return "nodata"
	case MissingFail:
		return "fail"
	case MissingPass:
		return "pass"
	}
	return fmt.Sprintf("MissingData(%d)", int(m))
}

// MarshalText implements encoding.TextMarshaler.
func (m MissingData) MarshalText() ([]byte, error) {
	if m < MissingNoData || m > MissingPass {
		return nil, fmt.Errorf("judge: invalid missing-data policy %d", int(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseMissingData.
func (m *MissingData) UnmarshalText(b []byte) error {
	v, err := ParseMissingData(string(b))
	if err == nil {
		*m = v
	}
	return err
}

// EffectMeasure says how the size of a change is measured against the
// allowed and critical thresholds of Options.
type EffectMeasure int

// The effect size measures. The zero value is EffectMeanRatio.
const (
	// EffectMeanRatio is mean(canary)/mean(baseline): 1.3 is 30% higher.
	// It is NaN, and then not checked, when either mean is 0.
	EffectMeanRatio EffectMeasure = iota
	// EffectCLES is the common-language effect size U/(n*m): the share of
	// (canary, baseline) pairs in which the canary is higher, ties counting
	// half. 0.5 is no effect. It suits metrics whose mean can be 0.
	EffectCLES
)

// ParseEffectMeasure parses "meanRatio" or "cles"; "" is "meanRatio".
func ParseEffectMeasure(s string) (EffectMeasure, error) {
	switch s {
	case "", "meanRatio":
		return EffectMeanRatio, nil
	case "cles":
		return EffectCLES, nil
	}
	return 0, fmt.Errorf("judge: unknown effect size measure %q (want meanRatio or cles)", s)
}

func (e EffectMeasure) String() string {
	switch e {
	case EffectMeanRatio:
		return "meanRatio"
	case EffectCLES:
		return "cles"
	}
	return fmt.Sprintf("EffectMeasure(%d)", int(e))
}

// MarshalText implements encoding.TextMarshaler.
func (e EffectMeasure) MarshalText() ([]byte, error) {
	if e < EffectMeanRatio || e > EffectCLES {
		return nil, fmt.Errorf("judge: invalid effect size measure %d", int(e))
	}
	return []byte(e.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseEffectMeasure.
func (e *EffectMeasure) UnmarshalText(b []byte) error {
	v, err := ParseEffectMeasure(string(b))
	if err == nil {
		*e = v
	}
	return err
}

// Defaults of Options, as in Kayenta's NetflixACAJudge.
const (
	DefaultConfidence = 0.98
	DefaultTolerance  = 0.25
)

// Options configure Classify for one metric. The zero value is Kayenta's
// default configuration. A zero field means its default, so a threshold
// cannot be set to exactly 0; use Direction to turn a side off instead.
type Options struct {
	// Direction is the change that counts against the canary.
	Direction Direction
	// Confidence is the level of the confidence interval of the shift,
	// strictly between 0 and 1; 0 means DefaultConfidence.
	Confidence float64
	// Tolerance is the half-width of the band around zero that the interval
	// must clear, as a share of |shift|; 0 means DefaultTolerance.
	Tolerance float64
	// Measure is the effect size measure the thresholds below apply to.
	Measure EffectMeasure
	// AllowedIncrease is the smallest effect size for High, AllowedDecrease
	// the largest for Low. 0 means no effect: 1 for EffectMeanRatio, 0.5
	// for EffectCLES.
	AllowedIncrease, AllowedDecrease float64
	// CriticalIncrease and CriticalDecrease are the effect sizes from which
	// High or Low on a Critical metric is a critical failure. 0 means no
	// effect, as above.
	CriticalIncrease, CriticalDecrease float64
	// Critical marks a metric whose failure fails the whole canary.
	Critical bool
	// Missing is the policy for a sample with no finite value.
	Missing MissingData
}

// withDefaults checks o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Direction < DirectionEither || o.Direction > DirectionDecrease {
		return o, fmt.Errorf("judge: invalid direction %d", int(o.Direction))
	}
	if o.Measure < EffectMeanRatio || o.Measure > EffectCLES {
		return o, fmt.Errorf("judge: invalid effect size measure %d", int(o.Measure))
	}
	if o.Missing < MissingNoData || o.Missing > MissingPass {
		return o, fmt.Errorf("judge: invalid missing-data policy %d", int(o.Missing))
	}
	if o.Confidence == 0 {
		o.Confidence = DefaultConfidence
	}
	if !(o.Confidence > 0 && o.Confidence < 1) {
		return o, fmt.Errorf("judge: confidence %v is not strictly between 0 and 1", o.Confidence)
	}
	if o.Tolerance == 0 {
		o.Tolerance = DefaultTolerance
	}
	if !(o.Tolerance > 0) || math.IsInf(o.Tolerance, 0) {
		return o, fmt.Errorf("judge: tolerance %v is not a positive number", o.Tolerance)
	}
	neutral := 1.0
	if o.Measure == EffectCLES {
		neutral = 0.5
	}
	for _, t := range []*float64{&o.AllowedIncrease, &o.AllowedDecrease, &o.CriticalIncrease, &o.CriticalDecrease} {
		if *t == 0 {
			*t = neutral
		}
		if !(*t > 0) || math.IsInf(*t, 0) {
			return o, fmt.Errorf("judge: effect size threshold %v is not a positive number", *t)
		}
	}
	return o, nil
}

// Verdict is the classification of one metric by Classify.
type Verdict struct {
	Class Class
	// Critical is set when this metric alone fails the canary: a Critical
	// metric classified High or Low beyond its critical threshold, or
	// classified NoData. Score fails the canary on it.
	Critical bool
	// NoDataFails is set on NoData under MissingFail: Score counts the
	// metric as failed instead of leaving it out.
	NoDataFails bool
	// Reason says in words why the metric got its class.
	Reason string
	// Ratio is mean(canary)/mean(baseline), Kayenta's "ratio" for reports:
	// 1 for identical samples, NaN when there is no data or either mean is
	// 0 (encoding/json cannot encode NaN; check with math.IsNaN).
	Ratio float64
	// Effect is the effect size by Options.Measure; NaN when there is no
	// data or when the mean ratio is undefined.
	Effect float64
	// Test is the Mann-Whitney result, or nil when the test was not needed
	// (no data, identical samples, a single value shared by both).
	Test *Result
}

// Classify compares canary with baseline for one metric and classifies the
// canary Pass, High, Low or NoData, following Kayenta's
// MannWhitneyClassifier (see the comment at the top of this file). NaN and
// infinite values are dropped first. The error is non-nil only for invalid
// options. Classify does not modify its arguments and is safe for
// concurrent use.
func Classify(canary, baseline []float64, opts Options) (Verdict, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return Verdict{}, err
	}
	neutral := 1.0
	if o.Measure == EffectCLES {
		neutral = 0.5
	}

	x, y := sortedFinite(canary, baseline)
	if len(x) == 0 || len(y) == 0 {
		missing := fmt.Sprintf("no data: %d finite canary values, %d finite baseline values", len(x), len(y))
		if o.Missing == MissingPass {
			return Verdict{Class: ClassPass, Reason: missing + "; missing data passes", Ratio: math.NaN(), Effect: math.NaN()}, nil
		}
		return Verdict{
			Class:       ClassNoData,
			Critical:    o.Critical,
			NoDataFails: o.Missing == MissingFail,
			Reason:      missing,
			Ratio:       math.NaN(),
			Effect:      math.NaN(),
		}, nil
	}
	if slices.Equal(x, y) {
		return Verdict{Class: ClassPass, Reason: "canary and baseline are identical", Ratio: 1, Effect: neutral}, nil
	}
	if x[0] == x[len(x)-1] && y[0] == y[len(y)-1] && x[0] == y[0] {
		return Verdict{Class: ClassPass, Reason: "canary and baseline hold a single, equal value", Ratio: 1, Effect: neutral}, nil
	}

	res := mannWhitneySorted(x, y, o.Confidence)
	ratio := meanRatio(x, y)
	effect := ratio
	if o.Measure == EffectCLES {
		effect = res.U / (float64(res.NCanary) * float64(res.NBaseline))
	}
	v := Verdict{Class: ClassPass, Ratio: ratio, Effect: effect, Test: &res}
	summary := fmt.Sprintf("shift %.4g, %g%% interval [%.4g, %.4g], p-value %.3g, %s %.4g",
		res.Shift, 100*o.Confidence, res.Lower, res.Upper, res.PValue, o.Measure, effect)

	if !res.Reachable {
		v.Reason = fmt.Sprintf("too few values (%d canary, %d baseline) to reach %g%% confidence; %s",
			res.NCanary, res.NBaseline, 100*o.Confidence, summary)
		return v, nil
	}
	bound := o.Tolerance * math.Abs(res.Shift)
	nan := math.IsNaN(effect)
	high := o.Direction != DirectionDecrease && res.Lower > bound && (nan || effect >= o.AllowedIncrease)
	low := o.Direction != DirectionIncrease && res.Upper < -bound && (nan || effect <= o.AllowedDecrease)
	switch {
	case high:
		v.Class = ClassHigh
		v.Critical = o.Critical && (nan || effect >= o.CriticalIncrease)
		v.Reason = "canary is higher than baseline: " + summary
	case low:
		v.Class = ClassLow
		v.Critical = o.Critical && (nan || effect <= o.CriticalDecrease)
		v.Reason = "canary is lower than baseline: " + summary
	default:
		v.Reason = "no significant difference in the direction checked: " + summary
	}
	if v.Critical {
		v.Reason += " (critical)"
	}
	return v, nil
}

// meanRatio is Kayenta's EffectSizes.meanRatio: NaN when either mean is 0.
func meanRatio(x, y []float64) float64 {
	mx, my := mean(x), mean(y)
	if mx == 0 || my == 0 {
		return math.NaN()
	}
	return mx / my
}

// mean is the arithmetic mean with a second, correcting pass, as R's mean
// and Commons Math's StatUtils.mean compute it.
func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	n := float64(len(x))
	m := s / n
	var c float64
	for _, v := range x {
		c += v - m
	}
	return m + c/n
}

// Thresholds classify the summary score of a canary: a score of at least
// Pass passes, of at least Marginal is marginal, and below fails. Both are
// on the 0..100 scale of the score, with Marginal <= Pass.
type Thresholds struct {
	Pass, Marginal float64
}

// Outcome is the verdict on the canary as a whole.
type Outcome string

// The outcomes of Score.
const (
	OutcomePass     Outcome = "pass"
	OutcomeMarginal Outcome = "marginal"
	OutcomeFail     Outcome = "fail"
)

// MetricVerdict is one metric's verdict as Score weighs it.
type MetricVerdict struct {
	Name string
	// Weight is the metric's share in the score relative to the others; 0,
	// a negative number, NaN or +Inf counts as 1.
	Weight float64
	Verdict
}

// noDataFailShare is Kayenta's NODATA_THRESHOLD: when at least this share
// of the metrics are NoData (not counting NoDataFails), the canary fails.
const noDataFailShare = 0.5

// Score sums the metric verdicts of a canary up into a score from 0 to 100
// and an outcome, following Kayenta's WeightedSumScorer and
// ThresholdScoreClassifier:
//
//   - A metric with Critical set that is not Pass fails the canary with
//     score 0.
//   - When half or more of the metrics are NoData (without NoDataFails), the
//     canary fails with score 0.
//   - Otherwise the score is 100 times the weight of the Pass metrics over
//     the weight of the metrics that count: Pass, High, Low, NoData with
//     NoDataFails, and any unknown class, which counts as failed. NoData
//     metrics are left out of both sums; when nothing counts the score is 100.
//     The score is rounded to two decimals.
//   - The outcome is pass at or above t.Pass, marginal at or above
//     t.Marginal, and fail below.
//
// Kayenta scores groups of metrics and weights the groups; Score is its
// scorer for a single group, with the count of metrics generalized to a
// sum of weights. No metrics at all score 0 and fail.
func Score(metrics []MetricVerdict, t Thresholds) (float64, Outcome) {
	if len(metrics) == 0 {
		return 0, OutcomeFail
	}
	noData := 0
	for _, m := range metrics {
		if m.Critical && m.Class != ClassPass {
			return 0, OutcomeFail
		}
		if m.Class == ClassNoData && !m.NoDataFails {
			noData++
		}
	}
	if float64(noData) >= noDataFailShare*float64(len(metrics)) {
		return 0, OutcomeFail
	}

	var pass, counted float64
	for _, m := range metrics {
		w := m.Weight
		if !(w > 0) || math.IsInf(w, 1) {
			w = 1
		}
		switch {
		case m.Class == ClassPass:
			pass += w
			counted += w
		case m.Class == ClassNoData && !m.NoDataFails:
		default:
			counted += w
		}
	}
	score := 100.0
	if counted > 0 {
		score = math.Round(100*pass/counted*100) / 100
	}
	switch {
	case score >= t.Pass:
		return score, OutcomePass
	case score >= t.Marginal:
		return score, OutcomeMarginal
	}
	return score, OutcomeFail
}
