// Package judge holds the statistics of the canary judge: a two-sample
// Mann-Whitney U test (Wilcoxon rank-sum test) with a confidence interval for
// the shift between canary and baseline, the per-metric classification built
// on it (Classify), and the score that sums the classifications up (Score).
//
// The test is the one R computes with
//
//	wilcox.test(canary, baseline, exact = FALSE, correct = TRUE, conf.int = TRUE)
//
// and the classification follows Kayenta's NetflixACAJudge. The reference
// values the tests check against are in testdata/, with the script that
// computed them.
package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// ErrNoData is returned, wrapped, by MannWhitney when the canary or the
// baseline has no finite value left to compare. Test for it with errors.Is.
var ErrNoData = errors.New("judge: no data")

// Result is what MannWhitney computes for one pair of samples.
type Result struct {
	// NCanary and NBaseline are the sample sizes after non-finite values were
	// dropped.
	NCanary, NBaseline int

	// U is the Mann-Whitney U statistic of the canary: the number of
	// (canary, baseline) pairs in which the canary value is the larger, plus
	// half the number of tied pairs. It is the W that R reports for
	// wilcox.test(canary, baseline), and lies in [0, NCanary*NBaseline].
	U float64

	// Z is the standardized statistic of the normal approximation, with the
	// variance corrected for ties and with the continuity correction. It is 0
	// when every value of both samples is the same.
	Z float64

	// PValue is the two-sided p-value of the normal approximation, in [0, 1]
	// (it underflows to 0, as in R, when the samples are far apart). It is 1
	// when every value of both samples is the same (R gives NaN).
	PValue float64

	// Shift is the Hodges-Lehmann estimate of the shift of the canary against
	// the baseline: the median of all NCanary*NBaseline differences
	// canary[i] - baseline[j]. It is 0 when every value is the same.
	Shift float64

	// Lower and Upper bound the confidence interval of the shift at the
	// confidence given to MannWhitney, obtained as R does by inverting the
	// test: the shifts mu for which the test of canary - mu against the
	// baseline does not reject. Like R, they are clamped to
	// [min(canary) - max(baseline), max(canary) - min(baseline)]. Where R
	// approximates each bound with uniroot (to within its tol.root, 1e-4 by
	// default), they are computed here exactly: each is the pairwise
	// difference at which the test statistic crosses its critical value.
	// When both samples are constant, R stops with an error; the interval is
	// then the one shift there is, [Shift, Shift].
	Lower, Upper float64

	// Reachable reports whether the confidence can be reached at all with
	// these sample sizes and ties: it is false when even samples that do not
	// overlap would give a p-value above 1 - confidence. The interval is then
	// only the clamp described above, not a statement at that confidence.
	// R and Kayenta report the clamped interval without saying so.
	Reachable bool
}

// MannWhitney runs the two-sided Mann-Whitney U test of canary against
// baseline and estimates the shift between them with the confidence interval
// at the given confidence level, which must lie strictly between 0 and 1
// (the judge uses 0.98).
//
// Non-finite values (NaN, +Inf, -Inf) are dropped first. R drops NaN too but
// ranks infinities; here they are dropped as well, because the shift of an
// infinite value is undefined. If either sample is then empty, MannWhitney
// returns an error wrapping ErrNoData, along with a Result holding only the
// sample sizes.
//
// MannWhitney does not modify its arguments and is safe for concurrent use.
// For samples of n and m values it takes O((n+m) log(n+m)) expected time and
// O(n+m) memory: the n*m pairwise differences are never stored, their order
// statistics are selected with pivots drawn from a fixed-seed generator, so
// results are deterministic.
func MannWhitney(canary, baseline []float64, confidence float64) (Result, error) {
	if !(confidence > 0 && confidence < 1) {
		return Result{}, fmt.Errorf("judge: confidence %v is not strictly between 0 and 1", confidence)
	}
	x, y := sortedFinite(canary, baseline)
	if len(x) == 0 || len(y) == 0 {
		return Result{NCanary: len(x), NBaseline: len(y)}, noDataError(len(x), len(y))
	}
	return mannWhitneySorted(x, y, confidence), nil
}

func noDataError(nCanary, nBaseline int) error {
	return fmt.Errorf("%w: %d finite canary values, %d finite baseline values", ErrNoData, nCanary, nBaseline)
}

// sortedFinite copies the finite values of a and b into one new backing
// array and sorts each copy in ascending order.
func sortedFinite(a, b []float64) (x, y []float64) {
	buf := make([]float64, 0, len(a)+len(b))
	for _, v := range a {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			buf = append(buf, v)
		}
	}
	n := len(buf)
	for _, v := range b {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			buf = append(buf, v)
		}
	}
	x, y = buf[:n:n], buf[n:]
	slices.Sort(x)
	slices.Sort(y)
	return x, y
}

// mannWhitneySorted is MannWhitney for non-empty samples of finite values,
// each sorted in ascending order.
func mannWhitneySorted(x, y []float64, confidence float64) Result {
	nx, ny := float64(len(x)), float64(len(y))
	r := Result{NCanary: len(x), NBaseline: len(y), PValue: 1}

	u, ties := rankStats(x, y, 0)
	r.U = u
	if s := rankSigma(nx, ny, ties); s > 0 {
		// R: z <- STATISTIC - n.x*n.y/2; z <- (z - sign(z)*0.5)/SIGMA
		z := u - nx*ny/2
		z = (z - sign(z)*0.5) / s
		r.Z = z
		r.PValue = 2 * min(pnorm(z, true), pnorm(z, false))
	}

	p := newPairs(x, y)
	r.Shift = p.median()
	r.Lower, r.Upper, r.Reachable = p.shiftInterval(confidence)
	return r
}

// rankStats ranks x[i]-mu together with y, both sorted in ascending order,
// and returns the U statistic of the shifted x, #{x[i]-mu > y[j]} plus half
// of #{x[i]-mu == y[j]}, and the tie term sum(t^3 - t) over the groups of t
// equal values. It computes what R computes from rank(c(x - mu, y)).
func rankStats(x, y []float64, mu float64) (u, ties float64) {
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		var v float64
		switch {
		case j == len(y):
			v = x[i] - mu
		case i == len(x):
			v = y[j]
		default:
			v = min(x[i]-mu, y[j])
		}
		i0, j0 := i, j
		for i < len(x) && x[i]-mu == v {
			i++
		}
		for j < len(y) && y[j] == v {
			j++
		}
		cx, cy := float64(i-i0), float64(j-j0)
		u += cx * (float64(j0) + cy/2)
		t := cx + cy
		ties += t*t*t - t
	}
	return u, ties
}

// withinTies is the tie term sum(t^3 - t) of one sorted sample.
func withinTies(x []float64) float64 {
	var ties float64
	for i := 0; i < len(x); {
		j := i + 1
		for j < len(x) && x[j] == x[i] {
			j++
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	return ties
}

// rankSigma is the standard deviation of U under the null hypothesis,
// corrected for ties, written as R writes it so that it rounds the same.
func rankSigma(nx, ny, ties float64) float64 {
	return math.Sqrt((nx * ny / 12) * ((nx + ny + 1) - ties/((nx+ny)*(nx+ny-1))))
}

func sign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// pairs selects order statistics of the pairwise differences x[i] - y[j]
// without storing them. Row i of the implicit n-by-m matrix holds
// x[i] - y[m-1-j] for j = 0..m-1, which is sorted along rows and columns
// (floating-point subtraction is monotone in each argument), so the k-th
// smallest difference can be found by narrowing a range of candidate
// columns per row between pivots, each step counting in O(n+m).
type pairs struct {
	x, y   []float64
	lo     []int // candidate columns of row i: [lo[i], hi[i])
	hi     []int
	split  []int // per row: end of the values below the low pivot
	end    []int // per row: end of the values not above the high pivot
	prefix []int // per row: candidates in the rows before it
	sample [pivotSample]float64
	last   [gatherAt]float64
	rng    uint64
}

// pivotSample candidates are drawn per step; the two pivots are the ones
// pivotGap places below and above the estimated rank of the k-th smallest
// among them, which brackets it in most steps and keeps about a quarter of
// the candidates. At gatherAt candidates or fewer, they are sorted.
const (
	pivotSample = 64
	pivotGap    = 8
	gatherAt    = 2 * pivotSample
)

func newPairs(x, y []float64) *pairs {
	n := len(x)
	idx := make([]int, 5*n)
	return &pairs{
		x: x, y: y,
		lo: idx[:n:n], hi: idx[n : 2*n : 2*n], split: idx[2*n : 3*n : 3*n],
		end: idx[3*n : 4*n : 4*n], prefix: idx[4*n:],
		rng: 0x9e3779b97f4a7c15,
	}
}

func (p *pairs) at(i, j int) float64 { return p.x[i] - p.y[len(p.y)-1-j] }

// next is xorshift64*: pivots need to be spread, not unpredictable.
func (p *pairs) next() uint64 {
	p.rng ^= p.rng >> 12
	p.rng ^= p.rng << 25
	p.rng ^= p.rng >> 27
	return p.rng * 0x2545f4914f6cdd1d
}

// candidate returns a candidate drawn uniformly; prefix must be current.
func (p *pairs) candidate(left int) float64 {
	r := int(p.next() % uint64(left))
	i := sort.Search(len(p.prefix), func(i int) bool { return p.prefix[i] > r }) - 1
	return p.at(i, p.lo[i]+r-p.prefix[i])
}

// kth returns the k-th smallest (from 0) of the n*m differences.
func (p *pairs) kth(k int) float64 {
	n, m := len(p.x), len(p.y)
	for i := range n {
		p.lo[i], p.hi[i] = 0, m
	}
	left := n * m
	single := false
	for {
		if left <= gatherAt {
			buf := p.last[:0]
			for i := range n {
				for j := p.lo[i]; j < p.hi[i]; j++ {
					buf = append(buf, p.at(i, j))
				}
			}
			slices.Sort(buf)
			return buf[k]
		}

		sum := 0
		for i := range n {
			p.prefix[i] = sum
			sum += p.hi[i] - p.lo[i]
		}
		var tLo, tHi float64
		if single {
			// The last pair of pivots kept every candidate: fall back to
			// one random pivot, which removes at least itself.
			tLo = p.candidate(left)
			tHi = tLo
			single = false
		} else {
			for s := range p.sample {
				p.sample[s] = p.candidate(left)
			}
			slices.Sort(p.sample[:])
			at := int(float64(k) / float64(left) * pivotSample)
			tLo = p.sample[max(at-pivotGap, 0)]
			tHi = p.sample[min(at+pivotGap, pivotSample-1)]
		}

		// Staircase walk: in row i, the first column holding a value >= tLo
		// (and > tHi) moves left as i grows.
		less, notAbove := 0, 0
		ge, gt := m, m
		for i := range n {
			for ge > 0 && p.at(i, ge-1) >= tLo {
				ge--
			}
			for gt > 0 && p.at(i, gt-1) > tHi {
				gt--
			}
			p.split[i] = min(max(ge, p.lo[i]), p.hi[i])
			p.end[i] = min(max(gt, p.lo[i]), p.hi[i])
			less += p.split[i] - p.lo[i]
			notAbove += p.end[i] - p.lo[i]
		}

		switch {
		case k < less: // below tLo, which is a candidate: at least it goes
			copy(p.hi, p.split)
			left = less
		case k >= notAbove: // above tHi, which goes
			copy(p.lo, p.end)
			k -= notAbove
			left -= notAbove
		case tLo == tHi:
			return tLo
		case less == 0 && notAbove == left:
			single = true
		default: // within [tLo, tHi]
			copy(p.lo, p.split)
			copy(p.hi, p.end)
			k -= less
			left = notAbove - less
		}
	}
}

// median is the Hodges-Lehmann estimate: the median of the differences.
func (p *pairs) median() float64 {
	n := len(p.x) * len(p.y)
	if n%2 == 1 {
		return p.kth(n / 2)
	}
	a, b := p.kth(n/2-1), p.kth(n/2)
	if m := (a + b) / 2; !math.IsInf(m, 0) {
		return m
	}
	return a/2 + b/2
}

// wilcoxW is R's function W(d) inside wilcox.test: the continuity-corrected,
// standardized rank statistic of x - mu against y. It is NaN when every
// observation is tied, where R divides 0 by 0 as well.
func (p *pairs) wilcoxW(mu float64) float64 {
	nx, ny := float64(len(p.x)), float64(len(p.y))
	u, ties := rankStats(p.x, p.y, mu)
	dz := u - nx*ny/2
	return (dz - sign(dz)*0.5) / rankSigma(nx, ny, ties)
}

// shiftInterval computes the two-sided confidence interval of the shift the
// way R's wilcox.test does (exact = FALSE, correct = TRUE, conf.int = TRUE):
// each bound is the root of f(mu) = W(mu) - zq with zq the upper and the
// lower alpha/2 normal quantile, falling back to the extreme difference
// when f does not change sign over [mumin, mumax].
//
// f is non-increasing and changes value only at the pairwise differences.
// Between two neighboring differences no canary value meets a baseline value,
// so the tie term is that of the two samples alone (sigma0) and U is the
// number of differences above mu: f = h(U) with
// h(U) = ((U - N/2) - sign(U - N/2)/2)/sigma0 - zq, non-decreasing in U.
// R's uniroot converges on the step where f changes sign, which is the
// difference of rank N - U* (from 1), U* being the largest U with h(U) <= 0.
func (p *pairs) shiftInterval(confidence float64) (lower, upper float64, reachable bool) {
	n, m := len(p.x), len(p.y)
	nx, ny := float64(n), float64(m)
	total := n * m
	sigma0 := rankSigma(nx, ny, withinTies(p.x)+withinTies(p.y))

	alpha := 1 - confidence
	zLower := qnorm(alpha/2, false) // R: qnorm(alpha/2, lower.tail = FALSE)
	zUpper := qnorm(alpha/2, true)  // R: qnorm(alpha/2)
	reachable = (nx*ny/2-0.5)/sigma0 > zLower

	muMin := p.x[0] - p.y[m-1]
	muMax := p.x[n-1] - p.y[0]
	wMin, wMax := p.wilcoxW(muMin), p.wilcoxW(muMax)
	if math.IsNaN(wMin) || math.IsNaN(wMax) {
		// Every observation ties at muMin (or muMax): both samples are
		// constant and muMin is the only difference. R stops here.
		return muMin, muMax, reachable
	}

	root := func(zq float64) float64 {
		if wMin-zq <= 0 {
			return muMin
		}
		if wMax-zq >= 0 {
			return muMax
		}
		h := func(u int) float64 {
			dz := float64(u) - nx*ny/2
			return (dz-sign(dz)*0.5)/sigma0 - zq
		}
		uStar := sort.Search(total+1, func(u int) bool { return h(u) > 0 }) - 1
		k := min(max(total-uStar-1, 0), total-1)
		return p.kth(k)
	}
	return root(zLower), root(zUpper), reachable
}

// pnorm is the standard normal distribution function, of the lower tail or
// of the upper tail.
func pnorm(z float64, lowerTail bool) float64 {
	if lowerTail {
		return math.Erfc(-z/math.Sqrt2) / 2
	}
	return math.Erfc(z/math.Sqrt2) / 2
}

// qnorm is the standard normal quantile function, computed as R computes it
// (R's qnorm5 with log.p = FALSE): Wichura's algorithm AS 241 (PPND16,
// Applied Statistics 37, 1988), which is accurate to about 1e-16.
func qnorm(p float64, lowerTail bool) float64 {
	switch {
	case math.IsNaN(p) || p < 0 || p > 1:
		return math.NaN()
	case p == 0:
		if lowerTail {
			return math.Inf(-1)
		}
		return math.Inf(1)
	case p == 1:
		if lowerTail {
			return math.Inf(1)
		}
		return math.Inf(-1)
	}
	lowerP, upperP := p, 0.5-p+0.5 // R_DT_qIv(p) and R_DT_CIv(p)
	if !lowerTail {
		lowerP, upperP = 0.5-p+0.5, p
	}
	q := lowerP - 0.5
	if math.Abs(q) <= 0.425 {
		r := 0.180625 - q*q
		return q * (((((((r*2509.0809287301226727+
			33430.575583588128105)*r+67265.770927008700853)*r+
			45921.953931549871457)*r+13731.693765509461125)*r+
			1971.5909503065514427)*r+133.14166789178437745)*r +
			3.387132872796366608) /
			(((((((r*5226.495278852545925+
				28729.085735721942674)*r+39307.89580009271061)*r+
				21213.794301586595867)*r+5394.1960214247511077)*r+
				687.1870074920579083)*r+42.313330701600911252)*r + 1)
	}
	r := lowerP
	if q > 0 {
		r = upperP
	}
	r = math.Sqrt(-math.Log(r))
	var val float64
	if r <= 5 {
		r -= 1.6
		val = (((((((r*7.7454501427834140764e-4+
			0.0227238449892691845833)*r+0.24178072517745061177)*r+
			1.27045825245236838258)*r+3.64784832476320460504)*r+
			5.7694972214606914055)*r+4.6303378461565452959)*r +
			1.42343711074968357734) /
			(((((((r*1.05075007164441684324e-9+5.475938084995344946e-4)*r+
				0.0151986665636164571966)*r+0.14810397642748007459)*r+
				0.68976733498510000455)*r+1.6763848301838038494)*r+
				2.05319162663775882187)*r + 1)
	} else {
		r -= 5
		val = (((((((r*2.01033439929228813265e-7+
			2.71155556874348757815e-5)*r+
			0.0012426609473880784386)*r+0.026532189526576123093)*r+
			0.29656057182850489123)*r+1.7848265399172913358)*r+
			5.4637849111641143699)*r +
			6.6579046435011037772) /
			(((((((r*2.04426310338993978564e-15+1.4215117583164458887e-7)*r+
				1.8463183175100546818e-5)*r+7.868691311456132591e-4)*r+
				0.0148753612908506148525)*r+0.13692988092273580531)*r+
				0.59983220655588793769)*r + 1)
	}
	if q < 0 {
		val = -val
	}
	return val
}
