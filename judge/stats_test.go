package judge

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// floats decodes a JSON array in which null stands for NaN, which JSON
// cannot write.
type floats []float64

func (f *floats) UnmarshalJSON(b []byte) error {
	var raw []*float64
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(floats, len(raw))
	for i, v := range raw {
		out[i] = math.NaN()
		if v != nil {
			out[i] = *v
		}
	}
	*f = out
	return nil
}

type refCase struct {
	Name     string `json:"name"`
	Canary   floats `json:"canary"`
	Baseline floats `json:"baseline"`
	Options  struct {
		Direction        string   `json:"direction"`
		Measure          string   `json:"measure"`
		Missing          string   `json:"missing"`
		Critical         bool     `json:"critical"`
		AllowedIncrease  *float64 `json:"allowed_increase"`
		AllowedDecrease  *float64 `json:"allowed_decrease"`
		CriticalIncrease *float64 `json:"critical_increase"`
		CriticalDecrease *float64 `json:"critical_decrease"`
	} `json:"options"`
	Error     *string  `json:"error"`
	NCanary   int      `json:"n_canary"`
	NBaseline int      `json:"n_baseline"`
	W         *float64 `json:"w"`
	// PValue is null where R gives NaN: every value tied.
	PValue        *float64 `json:"p_value"`
	HodgesLehmann *float64 `json:"hodges_lehmann"`
	// MeanRatio is null for NaN: a mean of 0.
	MeanRatio *float64 `json:"mean_ratio"`
	// ConfIntDefault is R's interval with its default tol.root = 1e-4,
	// null where R stops.
	ConfIntDefault []float64 `json:"conf_int_default"`
	// ConfInt is R's interval with tol.root = 1e-300, or the documented
	// rule where R stops (ConfIntFromRule).
	ConfInt         []float64 `json:"conf_int"`
	ConfIntFromRule bool      `json:"conf_int_from_rule"`
	Reachable       bool      `json:"reachable"`
	Class           string    `json:"class"`
	Critical        bool      `json:"critical"`
	NoDataFails     bool      `json:"nodata_fails"`
}

type reference struct {
	RVersion  string    `json:"r_version"`
	ConfLevel float64   `json:"conf_level"`
	Tolerance float64   `json:"tolerance"`
	Cases     []refCase `json:"cases"`
	Qnorm     []struct {
		P, Lower, Upper float64
	} `json:"qnorm"`
	Pnorm []struct {
		Z, Lower, Upper float64
	} `json:"pnorm"`
}

func loadReference(t testing.TB) reference {
	t.Helper()
	b, err := os.ReadFile("testdata/mannwhitney_reference.json")
	require.NoError(t, err)
	var ref reference
	require.NoError(t, json.Unmarshal(b, &ref))
	require.NotEmpty(t, ref.Cases)
	require.Equal(t, DefaultConfidence, ref.ConfLevel)
	require.Equal(t, DefaultTolerance, ref.Tolerance)
	return ref
}

// requireClose checks |got - want| <= rel*|want| + abs.
func requireClose(t *testing.T, want, got, rel, abs float64, what string) {
	t.Helper()
	if math.IsNaN(want) {
		require.Truef(t, math.IsNaN(got), "%s: got %v, want NaN", what, got)
		return
	}
	require.LessOrEqualf(t, math.Abs(got-want), rel*math.Abs(want)+abs,
		"%s: got %.17g, want %.17g", what, got, want)
}

// scale is the largest magnitude among the finite values of the samples.
func scale(samples ...[]float64) float64 {
	s := 0.0
	for _, xs := range samples {
		for _, v := range xs {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				s = max(s, math.Abs(v))
			}
		}
	}
	return s
}

// sameFloats compares bit for bit, so that NaN equals NaN.
func sameFloats(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
}

func constant(xs []float64) bool {
	var first float64
	n := 0
	for _, v := range xs {
		if math.IsNaN(v) {
			continue
		}
		if n == 0 {
			first = v
		} else if v != first {
			return false
		}
		n++
	}
	return n > 0
}

func TestMannWhitneyAgainstR(t *testing.T) {
	ref := loadReference(t)
	t.Logf("reference computed with %s", ref.RVersion)
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			canary, baseline := slices.Clone(c.Canary), slices.Clone(c.Baseline)
			res, err := MannWhitney(c.Canary, c.Baseline, ref.ConfLevel)
			require.True(t, sameFloats(canary, c.Canary), "canary modified")
			require.True(t, sameFloats(baseline, c.Baseline), "baseline modified")
			require.Equal(t, c.NCanary, res.NCanary)
			require.Equal(t, c.NBaseline, res.NBaseline)
			if c.Error != nil {
				require.ErrorIs(t, err, ErrNoData)
				return
			}
			require.NoError(t, err)

			// U is a sum of halves: exact.
			require.Equal(t, *c.W, res.U, "U (R's W)")

			if c.PValue == nil {
				// R divides 0 by 0 when every value is tied; the judge says 1.
				require.Equal(t, 1.0, res.PValue)
				require.Equal(t, 0.0, res.Z)
			} else {
				requireClose(t, *c.PValue, res.PValue, 1e-9, 0, "p-value")
			}

			sc := scale(c.Canary, c.Baseline)
			requireClose(t, *c.HodgesLehmann, res.Shift, 1e-12, 1e-15*sc, "Hodges-Lehmann shift")

			// R with tol.root = 1e-300 brackets the step of the statistic to
			// a few ulps; the bounds here are the pairwise differences at
			// that step.
			require.Len(t, c.ConfInt, 2)
			requireClose(t, c.ConfInt[0], res.Lower, 1e-9, 1e-12*sc, "lower bound")
			requireClose(t, c.ConfInt[1], res.Upper, 1e-9, 1e-12*sc, "upper bound")
			if c.ConfIntFromRule {
				require.True(t, constant(c.Canary) && constant(c.Baseline))
				require.Equal(t, res.Shift, res.Lower)
				require.Equal(t, res.Shift, res.Upper)
			}
			// R's default interval: each bound within tol.root = 1e-4 of
			// the step, give or take R's relative term.
			if c.ConfIntDefault != nil {
				requireClose(t, c.ConfIntDefault[0], res.Lower, 1e-14, 1e-4, "lower bound, R default tol.root")
				requireClose(t, c.ConfIntDefault[1], res.Upper, 1e-14, 1e-4, "upper bound, R default tol.root")
			}
			require.Equal(t, c.Reachable, res.Reachable, "reachable")
			require.LessOrEqual(t, res.Lower, res.Upper)
		})
	}
}

func optionsOf(t *testing.T, c refCase) Options {
	t.Helper()
	var o Options
	var err error
	o.Direction, err = ParseDirection(c.Options.Direction)
	require.NoError(t, err)
	o.Measure, err = ParseEffectMeasure(c.Options.Measure)
	require.NoError(t, err)
	o.Missing, err = ParseMissingData(c.Options.Missing)
	require.NoError(t, err)
	o.Critical = c.Options.Critical
	set := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&o.AllowedIncrease, c.Options.AllowedIncrease)
	set(&o.AllowedDecrease, c.Options.AllowedDecrease)
	set(&o.CriticalIncrease, c.Options.CriticalIncrease)
	set(&o.CriticalDecrease, c.Options.CriticalDecrease)
	return o
}

func TestClassifyAgainstR(t *testing.T) {
	ref := loadReference(t)
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			v, err := Classify(c.Canary, c.Baseline, optionsOf(t, c))
			require.NoError(t, err)
			require.Equal(t, Class(c.Class), v.Class, v.Reason)
			require.Equal(t, c.Critical, v.Critical, "critical: %s", v.Reason)
			require.Equal(t, c.NoDataFails, v.NoDataFails, "nodata fails")
			require.NotEmpty(t, v.Reason)
			if v.Test != nil {
				want := math.NaN()
				if c.MeanRatio != nil {
					want = *c.MeanRatio
				}
				requireClose(t, want, v.Ratio, 1e-12, 0, "mean ratio")
				if c.Options.Measure == "cles" {
					requireClose(t, *c.W/float64(c.NCanary*c.NBaseline), v.Effect, 1e-15, 0, "cles")
				}
			}
		})
	}
}

func TestQuantilesAgainstR(t *testing.T) {
	ref := loadReference(t)
	for _, q := range ref.Qnorm {
		t.Run(fmt.Sprintf("qnorm(%g)", q.P), func(t *testing.T) {
			requireClose(t, q.Lower, qnorm(q.P, true), 4e-16, 0, "lower tail")
			requireClose(t, q.Upper, qnorm(q.P, false), 4e-16, 0, "upper tail")
		})
	}
	for _, p := range ref.Pnorm {
		t.Run(fmt.Sprintf("pnorm(%g)", p.Z), func(t *testing.T) {
			requireClose(t, p.Lower, pnorm(p.Z, true), 1e-13, 0, "lower tail")
			requireClose(t, p.Upper, pnorm(p.Z, false), 1e-13, 0, "upper tail")
		})
	}
	require.True(t, math.IsInf(qnorm(0, true), -1))
	require.True(t, math.IsInf(qnorm(1, true), 1))
	require.True(t, math.IsInf(qnorm(0, false), 1))
	require.True(t, math.IsNaN(qnorm(1.5, true)))
}

// Swapping the samples mirrors every result: U becomes n*m - U, the shift
// and the interval change sign, the p-value stays.
func TestMannWhitneySwapped(t *testing.T) {
	ref := loadReference(t)
	for _, c := range ref.Cases {
		if c.Error != nil {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			a, err := MannWhitney(c.Canary, c.Baseline, 0.98)
			require.NoError(t, err)
			b, err := MannWhitney(c.Baseline, c.Canary, 0.98)
			require.NoError(t, err)
			require.Equal(t, float64(a.NCanary*a.NBaseline)-a.U, b.U)
			require.Equal(t, a.PValue, b.PValue)
			require.Equal(t, -a.Shift, b.Shift)
			require.Equal(t, -a.Upper, b.Lower)
			require.Equal(t, -a.Lower, b.Upper)
			require.Equal(t, a.Reachable, b.Reachable)
		})
	}
}

// kth is checked against sorting all differences, on samples with many
// ties and on samples without.
func TestPairsKth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ n, m, levels int }{
		{1, 1, 0}, {1, 7, 0}, {7, 1, 3}, {5, 5, 2}, {13, 40, 0}, {40, 13, 4}, {60, 60, 6}, {100, 80, 0},
	} {
		t.Run(fmt.Sprintf("%dx%d/%d", tc.n, tc.m, tc.levels), func(t *testing.T) {
			draw := func(k int) []float64 {
				xs := make([]float64, k)
				for i := range xs {
					if tc.levels > 0 {
						xs[i] = float64(rng.IntN(tc.levels))
					} else {
						xs[i] = rng.NormFloat64()
					}
				}
				slices.Sort(xs)
				return xs
			}
			x, y := draw(tc.n), draw(tc.m)
			var all []float64
			for _, a := range x {
				for _, b := range y {
					all = append(all, a-b)
				}
			}
			slices.Sort(all)
			p := newPairs(x, y)
			for k := range all {
				require.Equal(t, all[k], p.kth(k), "k=%d", k)
			}
		})
	}
}

func TestMannWhitneyInputs(t *testing.T) {
	t.Run("non-finite values dropped", func(t *testing.T) {
		canary := []float64{3, math.Inf(1), 4, math.NaN(), 5}
		baseline := []float64{math.Inf(-1), 1, 2, 3}
		got, err := MannWhitney(canary, baseline, 0.9)
		require.NoError(t, err)
		want, err := MannWhitney([]float64{3, 4, 5}, []float64{1, 2, 3}, 0.9)
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.Equal(t, 3, got.NCanary)
		require.True(t, math.IsInf(canary[1], 1) && math.IsNaN(canary[3]), "input modified")
	})
	t.Run("inputs not modified", func(t *testing.T) {
		canary := []float64{5, 1, 4, 2}
		baseline := []float64{9, 0, 3}
		_, err := MannWhitney(canary, baseline, 0.98)
		require.NoError(t, err)
		require.Equal(t, []float64{5, 1, 4, 2}, canary)
		require.Equal(t, []float64{9, 0, 3}, baseline)
	})
	t.Run("no data", func(t *testing.T) {
		for _, tc := range []struct{ canary, baseline []float64 }{
			{nil, []float64{1}},
			{[]float64{1}, nil},
			{[]float64{math.NaN()}, []float64{math.Inf(1)}},
			{nil, nil},
		} {
			res, err := MannWhitney(tc.canary, tc.baseline, 0.98)
			require.ErrorIs(t, err, ErrNoData)
			require.Zero(t, res.U)
		}
	})
	t.Run("all equal", func(t *testing.T) {
		res, err := MannWhitney([]float64{2, 2, 2}, []float64{2, 2}, 0.98)
		require.NoError(t, err)
		require.Equal(t, Result{NCanary: 3, NBaseline: 2, U: 3, Z: 0, PValue: 1, Shift: 0, Lower: 0, Upper: 0, Reachable: false}, res)
	})
	t.Run("confidence out of range", func(t *testing.T) {
		for _, c := range []float64{0, 1, -0.5, 1.5, math.NaN()} {
			_, err := MannWhitney([]float64{1, 2}, []float64{3, 4}, c)
			require.Error(t, err, "confidence %v", c)
			require.NotErrorIs(t, err, ErrNoData)
		}
	})
}

func TestClassifyOptions(t *testing.T) {
	for _, o := range []Options{
		{Confidence: 1},
		{Confidence: -0.1},
		{Tolerance: -1},
		{Tolerance: math.NaN()},
		{AllowedIncrease: -1},
		{CriticalDecrease: math.Inf(1)},
		{Direction: Direction(7)},
		{Measure: EffectMeasure(-1)},
		{Missing: MissingData(9)},
	} {
		_, err := Classify([]float64{1}, []float64{2}, o)
		require.Error(t, err, "%+v", o)
	}

	d, err := ParseDirection("increase")
	require.NoError(t, err)
	require.Equal(t, DirectionIncrease, d)
	_, err = ParseDirection("up")
	require.Error(t, err)

	var opts struct {
		Direction Direction
		Measure   EffectMeasure
		Missing   MissingData
	}
	require.NoError(t, json.Unmarshal([]byte(`{"Direction":"decrease","Measure":"cles","Missing":"fail"}`), &opts))
	require.Equal(t, DirectionDecrease, opts.Direction)
	require.Equal(t, EffectCLES, opts.Measure)
	require.Equal(t, MissingFail, opts.Missing)
	b, err := json.Marshal(opts)
	require.NoError(t, err)
	require.JSONEq(t, `{"Direction":"decrease","Measure":"cles","Missing":"fail"}`, string(b))
	require.Error(t, json.Unmarshal([]byte(`{"Missing":"ignore"}`), &opts))
	_, err = json.Marshal(struct{ D Direction }{Direction(5)})
	require.Error(t, err)
}

// The tolerance band: a shift the interval clears at 0.25*|shift| but not
// at a wider band.
func TestClassifyTolerance(t *testing.T) {
	baseline := make([]float64, 60)
	canary := make([]float64, 60)
	for i := range baseline {
		baseline[i] = 100 + float64(i%10)
		canary[i] = 103 + float64(i%10)
	}
	v, err := Classify(canary, baseline, Options{})
	require.NoError(t, err)
	require.Equal(t, ClassHigh, v.Class, v.Reason)
	require.Greater(t, v.Test.Lower, 0.25*v.Test.Shift)
	v, err = Classify(canary, baseline, Options{Tolerance: 0.99})
	require.NoError(t, err)
	require.Equal(t, ClassPass, v.Class, v.Reason)
}

func verdict(class Class) Verdict { return Verdict{Class: class} }

func TestScore(t *testing.T) {
	th := Thresholds{Pass: 75, Marginal: 50}
	pass, high, low, nodata := verdict(ClassPass), verdict(ClassHigh), verdict(ClassLow), verdict(ClassNoData)
	nodataFails := Verdict{Class: ClassNoData, NoDataFails: true}
	criticalHigh := Verdict{Class: ClassHigh, Critical: true}
	criticalNoData := Verdict{Class: ClassNoData, Critical: true}
	m := func(w float64, v Verdict) MetricVerdict { return MetricVerdict{Weight: w, Verdict: v} }

	for _, tc := range []struct {
		name    string
		metrics []MetricVerdict
		score   float64
		outcome Outcome
	}{
		{"none", nil, 0, OutcomeFail},
		{"all pass", []MetricVerdict{m(0, pass), m(0, pass)}, 100, OutcomePass},
		{"three of four", []MetricVerdict{m(0, pass), m(0, pass), m(0, pass), m(0, high)}, 75, OutcomePass},
		{"two of three", []MetricVerdict{m(0, pass), m(0, low), m(0, pass)}, 66.67, OutcomeMarginal},
		{"one of three", []MetricVerdict{m(0, pass), m(0, low), m(0, high)}, 33.33, OutcomeFail},
		{"weighted", []MetricVerdict{m(3, pass), m(1, high)}, 75, OutcomePass},
		{"weighted against", []MetricVerdict{m(1, pass), m(3, high)}, 25, OutcomeFail},
		{"bad weights count 1", []MetricVerdict{m(-2, pass), m(math.NaN(), high), m(math.Inf(1), pass)}, 66.67, OutcomeMarginal},
		{"nodata left out", []MetricVerdict{m(0, pass), m(0, pass), m(0, high), m(0, nodata)}, 66.67, OutcomeMarginal},
		{"nodata counted when required", []MetricVerdict{m(0, pass), m(0, pass), m(0, high), m(0, nodataFails)}, 50, OutcomeMarginal},
		{"half nodata fails", []MetricVerdict{m(0, pass), m(0, nodata)}, 0, OutcomeFail},
		{"under half nodata", []MetricVerdict{m(0, pass), m(0, pass), m(0, nodata)}, 100, OutcomePass},
		{"required nodata not in the half", []MetricVerdict{m(0, pass), m(0, nodataFails)}, 50, OutcomeMarginal},
		{"critical failure", []MetricVerdict{m(0, pass), m(0, pass), m(0, pass), m(0, criticalHigh)}, 0, OutcomeFail},
		{"critical nodata", []MetricVerdict{m(0, pass), m(0, pass), m(0, pass), m(0, criticalNoData)}, 0, OutcomeFail},
		{"critical pass", []MetricVerdict{m(0, Verdict{Class: ClassPass, Critical: true})}, 100, OutcomePass},
		{"unknown class fails", []MetricVerdict{m(0, pass), m(0, Verdict{})}, 50, OutcomeMarginal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			score, outcome := Score(tc.metrics, th)
			require.Equal(t, tc.score, score)
			require.Equal(t, tc.outcome, outcome)
		})
	}
}

// A canary that classifies end to end: one metric high, one unchanged.
func TestClassifyThenScore(t *testing.T) {
	ref := loadReference(t)
	byName := map[string]refCase{}
	for _, c := range ref.Cases {
		byName[c.Name] = c
	}
	var metrics []MetricVerdict
	for _, name := range []string{"window60_high", "window60_same", "window60_identical", "counts_ties"} {
		c := byName[name]
		v, err := Classify(c.Canary, c.Baseline, Options{})
		require.NoError(t, err)
		metrics = append(metrics, MetricVerdict{Name: name, Verdict: v})
	}
	score, outcome := Score(metrics, Thresholds{Pass: 90, Marginal: 50})
	require.Equal(t, 50.0, score)
	require.Equal(t, OutcomeMarginal, outcome)

	c := byName["window60_high"]
	v, err := Classify(c.Canary, c.Baseline, Options{Critical: true})
	require.NoError(t, err)
	require.True(t, v.Critical)
	metrics[0].Verdict = v
	score, outcome = Score(metrics, Thresholds{Pass: 90, Marginal: 50})
	require.Equal(t, 0.0, score)
	require.Equal(t, OutcomeFail, outcome)
}

func benchSamples(n int) (canary, baseline []float64) {
	rng := rand.New(rand.NewPCG(3, 4))
	canary, baseline = make([]float64, n), make([]float64, n)
	for i := range n {
		baseline[i] = 100 + 10*rng.NormFloat64()
		canary[i] = 103 + 10*rng.NormFloat64()
	}
	return canary, baseline
}

func BenchmarkMannWhitney(b *testing.B) {
	for _, n := range []int{60, 1000} {
		canary, baseline := benchSamples(n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := MannWhitney(canary, baseline, DefaultConfidence); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkClassify(b *testing.B) {
	canary, baseline := benchSamples(60)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Classify(canary, baseline, Options{}); err != nil && !errors.Is(err, ErrNoData) {
			b.Fatal(err)
		}
	}
}

func TestMannWhitneyHugeValues(t *testing.T) {
	// The two middle differences are finite but their sum is not.
	res, err := MannWhitney([]float64{1e308, 1e308}, []float64{0}, 0.98)
	require.NoError(t, err)
	require.Equal(t, 1e308, res.Shift)
}

func TestEnumStrings(t *testing.T) {
	for _, d := range []Direction{DirectionEither, DirectionIncrease, DirectionDecrease} {
		got, err := ParseDirection(d.String())
		require.NoError(t, err)
		require.Equal(t, d, got)
	}
	for _, m := range []MissingData{MissingNoData, MissingFail, MissingPass} {
		got, err := ParseMissingData(m.String())
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
	for _, e := range []EffectMeasure{EffectMeanRatio, EffectCLES} {
		got, err := ParseEffectMeasure(e.String())
		require.NoError(t, err)
		require.Equal(t, e, got)
	}
	require.Equal(t, "Direction(9)", Direction(9).String())
	require.Equal(t, "MissingData(9)", MissingData(9).String())
	require.Equal(t, "EffectMeasure(9)", EffectMeasure(9).String())
	_, err := ParseEffectMeasure("ratio")
	require.Error(t, err)
	_, err = MissingData(9).MarshalText()
	require.Error(t, err)
	_, err = EffectMeasure(9).MarshalText()
	require.Error(t, err)
}
