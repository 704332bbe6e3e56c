package impact

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/judge"
)

// noisy returns n values around level with relative noise sd.
func noisy(seed uint64, n int, level, sd float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = level * (1 + sd*r.NormFloat64())
	}
	return out
}

// sparse returns n values that are 0 but for a share p of them, which are v.
func sparse(seed uint64, n int, p, v float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 9))
	out := make([]float64, n)
	for i := range out {
		if r.Float64() < p {
			out[i] = v
		}
	}
	return out
}

func checked(t *testing.T, sigs ...Signal) *Settings {
	t.Helper()
	s := &Settings{Signals: sigs}
	require.NoError(t, s.Check())
	return s
}

func sig(name string, d judge.Direction) Signal {
	return Signal{Name: name, Query: `sum(rate(x{ {{.Matchers}} }[1m]))`, Direction: d}
}

func TestCompare(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name    string
		signals []Signal
		vals    []Values
		verdict string
		// per signal: verdict and classification
		signalVerdicts []string
		classes        []string
		score          *float64
	}{
		{
			name:           "the same noise before and after is no change",
			signals:        []Signal{sig("latency", judge.DirectionIncrease)},
			vals:           []Values{{Before: noisy(1, 30, 0.2, 0.1), After: noisy(2, 10, 0.2, 0.1)}},
			verdict:        events.VerdictNoChange,
			signalVerdicts: []string{events.VerdictNoChange},
			classes:        []string{"Pass"},
			score:          ptr(100),
		},
		{
			name:           "three times the latency degrades",
			signals:        []Signal{sig("latency", judge.DirectionIncrease)},
			vals:           []Values{{Before: noisy(1, 30, 0.2, 0.1), After: noisy(2, 10, 0.6, 0.1)}},
			verdict:        events.VerdictDegraded,
			signalVerdicts: []string{events.VerdictDegraded},
			classes:        []string{"High"},
			score:          ptr(0),
		},
		{
			name:           "half the latency improves",
			signals:        []Signal{sig("latency", judge.DirectionIncrease)},
			vals:           []Values{{Before: noisy(1, 30, 0.2, 0.1), After: noisy(2, 10, 0.1, 0.1)}},
			verdict:        events.VerdictImproved,
			signalVerdicts: []string{events.VerdictImproved},
			classes:        []string{"Low"},
			score:          ptr(100),
		},
		{
			name:           "a drop of a signal whose decrease degrades",
			signals:        []Signal{sig("throughput", judge.DirectionDecrease)},
			vals:           []Values{{Before: noisy(1, 30, 100, 0.05), After: noisy(2, 10, 40, 0.05)}},
			verdict:        events.VerdictDegraded,
			signalVerdicts: []string{events.VerdictDegraded},
			classes:        []string{"Low"},
		},
		{
			name:           "either direction degrades both ways",
			signals:        []Signal{sig("queue", judge.DirectionEither)},
			vals:           []Values{{Before: noisy(1, 30, 100, 0.05), After: noisy(2, 10, 40, 0.05)}},
			verdict:        events.VerdictDegraded,
			signalVerdicts: []string{events.VerdictDegraded},
			classes:        []string{"Low"},
		},
		{
			name:    "a significant shift of 4% is no change",
			signals: []Signal{sig("latency", judge.DirectionIncrease)},
			// Many points and little noise: the p-value is tiny.
			vals:           []Values{{Before: noisy(1, 120, 0.2, 0.005), After: noisy(2, 40, 0.208, 0.005)}},
			verdict:        events.VerdictNoChange,
			signalVerdicts: []string{events.VerdictNoChange},
			classes:        []string{"Pass"},
		},
		{
			name:           "errors where there were none degrade, the mean ratio being undefined",
			signals:        []Signal{sig("error-ratio", judge.DirectionIncrease)},
			vals:           []Values{{Before: make([]float64, 30), After: noisy(2, 10, 0.05, 0.2)}},
			verdict:        events.VerdictDegraded,
			signalVerdicts: []string{events.VerdictDegraded},
			classes:        []string{"High"},
		},
		{
			name:           "rare errors on both sides are no change",
			signals:        []Signal{sig("error-ratio", judge.DirectionIncrease)},
			vals:           []Values{{Before: sparse(1, 30, 0.1, 0.02), After: sparse(2, 10, 0.2, 0.02)}},
			verdict:        events.VerdictNoChange,
			signalVerdicts: []string{events.VerdictNoChange},
			classes:        []string{"Pass"},
		},
		{
			name:           "too few values after: no data",
			signals:        []Signal{sig("latency", judge.DirectionIncrease)},
			vals:           []Values{{Before: noisy(1, 30, 0.2, 0.1), After: []float64{0.9, nan, 0.9, nan, 0.9, 0.9}}},
			verdict:        events.VerdictNoData,
			signalVerdicts: []string{events.VerdictNoData},
			classes:        []string{"NoData"},
		},
		{
			name:           "no values at all: no data",
			signals:        []Signal{sig("latency", judge.DirectionIncrease), sig("errors", judge.DirectionIncrease)},
			vals:           []Values{{}, {Before: []float64{nan, nan}}},
			verdict:        events.VerdictNoData,
			signalVerdicts: []string{events.VerdictNoData, events.VerdictNoData},
			classes:        []string{"NoData", "NoData"},
		},
		{
			name:    "one degraded signal of three, one without data",
			signals: []Signal{sig("errors", judge.DirectionIncrease), sig("latency", judge.DirectionIncrease), sig("otel", judge.DirectionIncrease)},
			vals: []Values{
				{Before: noisy(1, 30, 0.01, 0.1), After: noisy(2, 10, 0.04, 0.1)},
				{Before: noisy(3, 30, 0.2, 0.1), After: noisy(4, 10, 0.2, 0.1)},
				{},
			},
			verdict:        events.VerdictDegraded,
			signalVerdicts: []string{events.VerdictDegraded, events.VerdictNoChange, events.VerdictNoData},
			classes:        []string{"High", "Pass", "NoData"},
			score:          ptr(50),
		},
		{
			name:    "degraded wins over improved",
			signals: []Signal{sig("errors", judge.DirectionIncrease), sig("latency", judge.DirectionIncrease)},
			vals: []Values{
				{Before: noisy(1, 30, 0.01, 0.1), After: noisy(2, 10, 0.04, 0.1)},
				{Before: noisy(3, 30, 0.2, 0.1), After: noisy(4, 10, 0.05, 0.1)},
			},
			verdict:        events.VerdictDegraded,
			signalVerdicts: []string{events.VerdictDegraded, events.VerdictImproved},
			classes:        []string{"High", "Low"},
			score:          ptr(50),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := checked(t, c.signals...)
			verdict, score, out := Compare(s, c.vals)
			require.Equal(t, c.verdict, verdict)
			require.Len(t, out, len(c.signals))
			for i, si := range out {
				require.Equal(t, c.signals[i].Name, si.Name)
				require.Equal(t, c.signalVerdicts[i], si.Verdict, "signal %s: %s", si.Name, si.Reason)
				require.Equal(t, c.classes[i], si.Classification, "signal %s: %s", si.Name, si.Reason)
			}
			if c.score != nil {
				require.NotNil(t, score)
				require.InDelta(t, *c.score, *score, 0.01)
			}
			if verdict == events.VerdictNoData {
				require.Nil(t, score)
			}
		})
	}
}

func ptr(f float64) *float64 { return &f }

// TestCompareSharesTheConfidence: each of n signals with data is tested at
// 1-(1-confidence)/n; signals without data do not count.
func TestCompareSharesTheConfidence(t *testing.T) {
	base := Values{Before: noisy(1, 30, 0.2, 0.1), After: noisy(2, 10, 0.2, 0.1)}
	for _, c := range []struct {
		vals []Values
		want string
	}{
		{[]Values{base}, "98% interval"},
		{[]Values{base, base}, "99% interval"},
		{[]Values{base, base, base}, "99.33333333333333% interval"},
		{[]Values{base, {}, base}, "99% interval"},
	} {
		s := checked(t, sig("a", judge.DirectionIncrease), sig("b", judge.DirectionIncrease), sig("c", judge.DirectionIncrease))
		s.Signals = s.Signals[:len(c.vals)]
		_, _, out := Compare(s, c.vals)
		require.Contains(t, out[0].Reason, c.want)
	}
}

func TestCompareReportsMedians(t *testing.T) {
	s := checked(t, sig("latency", judge.DirectionIncrease))
	_, _, out := Compare(s, []Values{{Before: []float64{1, 2, 3, 4, 5, 6}, After: []float64{10, 20, 30, 40, 50, math.Inf(1)}}})
	require.Equal(t, 3.5, *out[0].Before)
	require.Equal(t, 30.0, *out[0].After)
	require.Equal(t, 6, out[0].BeforePoints)
	require.Equal(t, 5, out[0].AfterPoints)
	r, ok := MedianRatio(out[0])
	require.True(t, ok)
	require.InDelta(t, 30/3.5, r, 1e-9)
	require.NotNil(t, out[0].PValue)
	require.InDelta(t, 30.0/3.5, *out[0].Effect, 1e-9)

	_, ok = MedianRatio(events.SignalImpact{Before: ptr(0), After: ptr(1)})
	require.False(t, ok, "a zero median before has no ratio")
}
