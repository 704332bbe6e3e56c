package impact

import (
	"fmt"
	"math"
	"slices"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/judge"
)

// The comparison is the canary judge's, with the after window as the
// canary and the before window as the baseline: Mann-Whitney U, Kayenta's
// classification (judge.Classify) and score (judge.Score). What differs is
// how it is asked:
//
//   - Both sides are classified (direction either), and the signal's
//     direction says which one degrades: an improvement is reported, not
//     passed over.
//   - The confidence is shared by the event's signals with data
//     (Bonferroni), so that an event with three signals is not three times
//     as likely to be flagged by chance.
//   - An effect size between AllowedDecrease and AllowedIncrease is no
//     change, however small the p-value: with thousands of requests a
//     second a shift of 2% is significant and rarely what anyone means by
//     a degradation.
//   - A window with fewer than MinPoints values has no data.

// Values are the values of one signal in the two windows.
type Values struct {
	Before, After []float64
}

// Compare classifies every signal of s over its values (vals[i] is
// s.Signals[i]'s) and gives the event's verdict and score: degraded when a
// signal is degraded, else improved when one is, else no_change when one
// had data, else no_data. The score is judge.Score over the signals with
// data, an improvement passing; nil with none.
func Compare(s *Settings, vals []Values) (verdict string, score *float64, out []events.SignalImpact) {
	withData := 0
	for _, v := range vals {
		if finiteCount(v.Before) >= s.MinPoints && finiteCount(v.After) >= s.MinPoints {
			withData++
		}
	}
	conf := s.Confidence
	if withData > 1 {
		conf = 1 - (1-s.Confidence)/float64(withData)
	}
	out = make([]events.SignalImpact, len(s.Signals))
	var scored []judge.MetricVerdict
	counts := map[string]int{}
	for i := range s.Signals {
		sig := &s.Signals[i]
		si, jv := compareSignal(sig, vals[i], conf, s.MinPoints)
		out[i] = si
		counts[si.Verdict]++
		if si.Verdict == events.VerdictNoData {
			continue
		}
		if si.Verdict != events.VerdictDegraded {
			jv.Class = judge.ClassPass
		}
		scored = append(scored, judge.MetricVerdict{Name: sig.Name, Weight: sig.Weight, Verdict: jv})
	}
	if len(scored) > 0 {
		sc, _ := judge.Score(scored, judge.Thresholds{})
		score = &sc
	}
	switch {
	case counts[events.VerdictDegraded] > 0:
		verdict = events.VerdictDegraded
	case counts[events.VerdictImproved] > 0:
		verdict = events.VerdictImproved
	case counts[events.VerdictNoChange] > 0:
		verdict = events.VerdictNoChange
	default:
		verdict = events.VerdictNoData
	}
	return verdict, score, out
}

// classNames are the judge's classes as Kayenta (and the canary judge's
// reports) name them.
var classNames = map[judge.Class]string{
	judge.ClassPass: "Pass", judge.ClassHigh: "High", judge.ClassLow: "Low", judge.ClassNoData: "NoData",
}

// compareSignal classifies one signal at the confidence conf.
func compareSignal(sig *Signal, v Values, conf float64, minPoints int) (events.SignalImpact, judge.Verdict) {
	si := events.SignalImpact{
		Name:         sig.Name,
		Direction:    sig.Direction.String(),
		BeforePoints: finiteCount(v.Before),
		AfterPoints:  finiteCount(v.After),
		Before:       finite(median(v.Before)),
		After:        finite(median(v.After)),
	}
	if si.BeforePoints < minPoints || si.AfterPoints < minPoints {
		si.Classification = classNames[judge.ClassNoData]
		si.Verdict = events.VerdictNoData
		si.Reason = fmt.Sprintf("too few values to compare: %d before, %d after; at least %d on each side", si.BeforePoints, si.AfterPoints, minPoints)
		return si, judge.Verdict{Class: judge.ClassNoData}
	}
	jv, err := judge.Classify(v.After, v.Before, judge.Options{
		Direction:       judge.DirectionEither,
		Confidence:      conf,
		AllowedIncrease: sig.AllowedIncrease,
		AllowedDecrease: sig.AllowedDecrease,
	})
	if err != nil {
		// Settings.Check has checked every option.
		panic(err)
	}
	si.Classification = classNames[jv.Class]
	si.Effect = finite(jv.Effect)
	if jv.Test != nil {
		si.PValue = finite(jv.Test.PValue)
	}
	si.Verdict = signalVerdict(sig.Direction, jv.Class)
	si.Reason = "after compared with before: " + jv.Reason
	return si, jv
}

// signalVerdict reads a class with the direction that degrades.
func signalVerdict(d judge.Direction, c judge.Class) string {
	switch {
	case c == judge.ClassNoData:
		return events.VerdictNoData
	case c == judge.ClassPass:
		return events.VerdictNoChange
	case d == judge.DirectionEither,
		d == judge.DirectionIncrease && c == judge.ClassHigh,
		d == judge.DirectionDecrease && c == judge.ClassLow:
		return events.VerdictDegraded
	}
	return events.VerdictImproved
}

func finiteCount(vs []float64) int {
	n := 0
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			n++
		}
	}
	return n
}

// median is the median of the finite values; NaN with none.
func median(vs []float64) float64 {
	x := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			x = append(x, v)
		}
	}
	if len(x) == 0 {
		return math.NaN()
	}
	slices.Sort(x)
	n := len(x)
	if n%2 == 1 {
		return x[n/2]
	}
	return (x[n/2-1] + x[n/2]) / 2
}

// finite returns a pointer to f, or nil (JSON null) when it is NaN or
// infinite.
func finite(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// MedianRatio is after/before of a signal's medians: the value of its
// change_event_impact sample; false when it is not defined.
func MedianRatio(si events.SignalImpact) (float64, bool) {
	if si.Before == nil || si.After == nil || *si.Before == 0 {
		return 0, false
	}
	r := *si.After / *si.Before
	return r, !math.IsNaN(r) && !math.IsInf(r, 0)
}
