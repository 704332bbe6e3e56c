package shifts

import (
	"math"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// Direction is which way traffic shifted.
type Direction string

// The directions of a shift, the direction label of its events.
const (
	Up   Direction = "up"
	Down Direction = "down"
)

// class is what one point of a series says.
type class int8

const (
	// unknown: the observed or the baseline value is missing, or there is
	// no baseline to compare with. It neither holds nor ends a shift.
	unknown class = iota
	// normal: within the ratio, or too little traffic to compare.
	normal
	up
	down
)

func (c class) direction() Direction {
	switch c {
	case up:
		return Up
	case down:
		return Down
	}
	return ""
}

func classOf(d Direction) class {
	if d == Up {
		return up
	}
	return down
}

// Params place a run's points and say what a shift is.
type Params struct {
	// Start is the time of the first point, Step the time between two
	// (milliseconds); there are Points points.
	Start, Step int64
	Points      int
	// Ratio, For (milliseconds) and MinValue are the signal's.
	Ratio    float64
	For      int64
	MinValue float64
}

// Point is a series' observed and baseline value at one time.
type Point struct {
	T                  int64
	Observed, Baseline float64
}

// Ratio is observed/baseline, or NaN without a baseline.
func (p Point) Ratio() float64 {
	if p.Baseline <= 0 || math.IsNaN(p.Baseline) || math.IsNaN(p.Observed) {
		return math.NaN()
	}
	return p.Observed / p.Baseline
}

// Shift is one traffic shift of a series.
type Shift struct {
	Direction Direction
	// Start is the first point of the shift: the first of at least For
	// of consecutive points beyond the ratio.
	Start Point
	// Truncated is true when Start is the first point of the run: the
	// shift may have begun before it.
	Truncated bool
	// Stop is the first point after Start of at least For of consecutive
	// points with data back within the ratio (or beyond it the other way):
	// a shorter dip, or points with no data, do not end a shift. Open is
	// true when the run has none yet.
	Stop Point
	Open bool
	// Peak is the point of the shift farthest from its baseline.
	Peak Point
}

// Series is one series of a signal over a run: its shifts and what each
// point says.
type Series struct {
	Labels labels.Labels
	Shifts []Shift

	params  Params
	points  []Point
	classes []class
}

// Detect finds the shifts of every series of observed against the series
// with the same labels in baseline. Both matrices hold the points of the
// run (baseline at the times it is compared at, not at its own), and no
// series twice. A series of baseline that observed lacks is dropped: a
// series with no data now says nothing. Series come out ordered by labels.
func Detect(observed, baseline promql.Matrix, p Params) []Series {
	byLabels := make(map[string]promql.Series, len(baseline))
	for _, s := range baseline {
		byLabels[s.Metric.String()] = s
	}
	out := make([]Series, 0, len(observed))
	for _, obs := range observed {
		s := Series{Labels: obs.Metric, params: p, points: make([]Point, p.Points), classes: make([]class, p.Points)}
		for i := range s.points {
			s.points[i] = Point{T: p.Start + int64(i)*p.Step, Observed: math.NaN(), Baseline: math.NaN()}
		}
		s.fill(obs.Floats, func(pt *Point, v float64) { pt.Observed = v })
		if base, ok := byLabels[obs.Metric.String()]; ok {
			s.fill(base.Floats, func(pt *Point, v float64) { pt.Baseline = v })
		}
		for i, pt := range s.points {
			s.classes[i] = classify(pt, p)
		}
		s.Shifts = s.find()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Labels, out[j].Labels) < 0 })
	return out
}

// fill sets the points of fs that fall on the run's grid.
func (s *Series) fill(fs []promql.FPoint, set func(*Point, float64)) {
	for _, f := range fs {
		off := f.T - s.params.Start
		if off < 0 || off%s.params.Step != 0 {
			continue
		}
		if i := off / s.params.Step; i < int64(len(s.points)) {
			set(&s.points[i], f.F)
		}
	}
}

// classify says what one point is, in this order: a missing or infinite
// value is unknown; too little traffic then and now (neither value reaches
// MinValue, or both are 0) is normal; any traffic now against none then is
// unknown, not a shift; else the ratio decides, at or beyond it being a
// shift. The ratio is compared without dividing, so its boundary is exact.
func classify(pt Point, p Params) class {
	o, b := pt.Observed, pt.Baseline
	if !finite(o) || !finite(b) {
		return unknown
	}
	if max(o, b) < p.MinValue || (o <= 0 && b <= 0) {
		return normal
	}
	if b <= 0 {
		return unknown
	}
	switch {
	case o >= p.Ratio*b:
		return up
	case o*p.Ratio <= b:
		return down
	}
	return normal
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// find returns the shifts of the series: a run of points beyond the ratio
// in one direction, with no point between them unknown, that lasts For,
// begins one; it ends at the first point of such a run of points that are
// not beyond the ratio that way. For holds both ways, so that a short dip
// does not split a shift, and neither does the edge of data that stops
// coming: there rate() falls off over its range before the series ends.
func (s *Series) find() []Shift {
	var out []Shift
	n := len(s.classes)
	for i := 0; i < n; {
		c := s.classes[i]
		if c != up && c != down {
			i++
			continue
		}
		j := i
		for j+1 < n && s.classes[j+1] == c {
			j++
		}
		if s.points[j].T-s.points[i].T < s.params.For {
			i = j + 1
			continue
		}
		sh := Shift{Direction: c.direction(), Start: s.points[i], Truncated: i == 0}
		end, ok := s.endFrom(i, c)
		if ok {
			sh.Stop = s.points[end]
		} else {
			sh.Open, end = true, n
		}
		sh.Peak = s.peak(i, end, c)
		out = append(out, sh)
		i = end
	}
	return out
}

// endFrom is the index of the first point from i on that begins a run of
// known points, none beyond the ratio in the direction c, lasting For.
func (s *Series) endFrom(i int, c class) (int, bool) {
	back := func(k int) bool { return s.classes[k] != c && s.classes[k] != unknown }
	n := len(s.classes)
	for k := i; k < n; k++ {
		if !back(k) {
			continue
		}
		j := k
		for j+1 < n && back(j+1) {
			j++
		}
		if s.points[j].T-s.points[k].T >= s.params.For {
			return k, true
		}
		k = j
	}
	return 0, false
}

// peak is the point farthest from its baseline in direction c among those
// from i to end (exclusive).
func (s *Series) peak(i, end int, c class) Point {
	best := -1
	for k := i; k < end; k++ {
		if s.classes[k] != c {
			continue
		}
		r := s.points[k].Ratio()
		if best < 0 || (c == up && r > s.points[best].Ratio()) || (c == down && r < s.points[best].Ratio()) {
			best = k
		}
	}
	if best < 0 {
		return Point{T: s.points[i].T, Observed: math.NaN(), Baseline: math.NaN()}
	}
	return s.points[best]
}

// index is the index of the first point at or after t.
func (s *Series) index(t int64) int {
	if t <= s.params.Start {
		return 0
	}
	return int((t - s.params.Start + s.params.Step - 1) / s.params.Step)
}

// EndAfter is where a shift in direction d still going at t ends, as a
// shift's Stop: the first point at or after t that begins For of points
// with data not beyond the ratio that way, with the peak of the shift
// between t and it. ok is false when the run has none yet.
func (s *Series) EndAfter(t int64, d Direction) (stop, peak Point, ok bool) {
	i := s.index(t)
	if i >= len(s.points) {
		return Point{}, Point{}, false
	}
	end, ok := s.endFrom(i, classOf(d))
	if !ok {
		return Point{}, Point{}, false
	}
	return s.points[end], s.peak(i, end, classOf(d)), true
}
