package shifts

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

// detectCase is one case of testdata/detect.txt.
type detectCase struct {
	name               string
	line               int
	params             Params
	observed, baseline promql.Matrix
	want               []string
}

// TestDetectScript runs the cases of testdata/detect.txt.
func TestDetectScript(t *testing.T) {
	for _, c := range readDetectCases(t, "testdata/detect.txt") {
		t.Run(c.name, func(t *testing.T) {
			got := []string{}
			for _, s := range Detect(c.observed, c.baseline, c.params) {
				for _, sh := range s.Shifts {
					got = append(got, formatShift(s.Labels, sh, c.params))
				}
			}
			require.Equal(t, c.want, got, "case at line %d", c.line)
		})
	}
}

func readDetectCases(t *testing.T, path string) []*detectCase {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	p := parser.NewParser(parser.Options{})
	var cases []*detectCase
	var cur *detectCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, rest, _ := strings.Cut(line, " ")
		if cmd != "case" {
			require.NotNil(t, cur, "line %d: %q before a case", n, cmd)
		}
		switch cmd {
		case "case":
			cur = &detectCase{name: rest, line: n, want: []string{}}
			cases = append(cases, cur)
		case "params":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "step":
					cur.params.Step = parseDur(t, n, v)
				case "for":
					cur.params.For = parseDur(t, n, v)
				case "ratio", "min_value":
					f, err := strconv.ParseFloat(v, 64)
					require.NoError(t, err, "line %d", n)
					if k == "ratio" {
						cur.params.Ratio = f
					} else {
						cur.params.MinValue = f
					}
				default:
					t.Fatalf("line %d: unknown parameter %q", n, k)
				}
			}
		case "observed", "baseline":
			ls, vals, err := p.ParseSeriesDesc(rest)
			require.NoError(t, err, "line %d", n)
			s := promql.Series{Metric: ls}
			for i, v := range vals {
				if !v.Omitted {
					s.Floats = append(s.Floats, promql.FPoint{T: int64(i) * cur.params.Step, F: v.Value})
				}
			}
			cur.params.Points = max(cur.params.Points, len(vals))
			if cmd == "observed" {
				cur.observed = append(cur.observed, s)
			} else {
				cur.baseline = append(cur.baseline, s)
			}
		case "shift":
			// Normalize the labels as formatShift prints them.
			i := strings.Index(rest, "}")
			require.Positive(t, i, "line %d", n)
			ls, err := p.ParseMetric(rest[:i+1])
			require.NoError(t, err, "line %d", n)
			cur.want = append(cur.want, "shift "+ls.String()+rest[i+1:])
		case "none":
		default:
			t.Fatalf("line %d: unknown command %q", n, cmd)
		}
	}
	require.NoError(t, sc.Err())
	return cases
}

func parseDur(t *testing.T, line int, s string) int64 {
	d, err := model.ParseDuration(s)
	require.NoError(t, err, "line %d", line)
	return time.Duration(d).Milliseconds()
}

// formatShift prints a shift as the shift lines of testdata/detect.txt.
func formatShift(ls labels.Labels, sh Shift, p Params) string {
	at := func(t int64) string { return model.Duration(time.Duration(t-p.Start) * time.Millisecond).String() }
	from, to := at(sh.Start.T), ".."
	if sh.Truncated {
		from = ".."
	}
	if !sh.Open {
		to = at(sh.Stop.T)
	}
	return fmt.Sprintf("shift %s %s from=%s to=%s", ls, sh.Direction, from, to)
}

// weekShape is a request rate with a daily cycle — a fast morning ramp to
// four times the night's traffic and an evening fall — and quieter
// weekends, at t (milliseconds since the epoch).
func weekShape(t int64) float64 {
	day := float64(t%(24*3600_000)) / 3600_000 // hours into the day
	ramp := func(at float64) float64 { return 1 / (1 + math.Exp(-(day-at)*6)) }
	v := 100 * (1 + 3*ramp(8) - 3*ramp(20))
	if wd := (t / (24 * 3600_000)) % 7; wd == 2 || wd == 3 { // 1970-01-01 was a Thursday
		v *= 0.6
	}
	return v
}

// generated is a signal over a grid: shape at each point, times noise, times
// the factor of the point's time.
func generated(ls labels.Labels, p Params, offset int64, rng *rand.Rand, shape func(int64) float64, factor func(int64) float64) promql.Series {
	s := promql.Series{Metric: ls}
	for i := range p.Points {
		t := p.Start + int64(i)*p.Step
		v := shape(t-offset) * (1 + 0.1*(rng.Float64()-0.5))
		if factor != nil {
			v *= factor(t)
		}
		s.Floats = append(s.Floats, promql.FPoint{T: t, F: v})
	}
	return s
}

// TestDetectWeekShape checks generated traffic with a daily cycle against
// the same time a week before, at every hour of a week: the cycle alone is
// never a shift, and a surge or a drop on top of it is one.
func TestDetectWeekShape(t *testing.T) {
	const week = 7 * 24 * 3600_000
	start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).UnixMilli() // a Monday
	ls := labels.FromStrings("service", "checkout")
	for _, tc := range []struct {
		name   string
		factor func(start int64) func(int64) float64
		want   []Direction
	}{
		{name: "daily cycle only"},
		{
			name: "3x surge for 15m",
			factor: func(at int64) func(int64) float64 {
				return func(t int64) float64 {
					if t >= at && t < at+15*60_000 {
						return 3
					}
					return 1
				}
			},
			want: []Direction{Up},
		},
		{
			name: "70% drop for 15m",
			factor: func(at int64) func(int64) float64 {
				return func(t int64) float64 {
					if t >= at && t < at+15*60_000 {
						return 0.3
					}
					return 1
				}
			},
			want: []Direction{Down},
		},
		{
			name: "3x surge for 4m",
			factor: func(at int64) func(int64) float64 {
				return func(t int64) float64 {
					if t >= at && t < at+4*60_000 {
						return 3
					}
					return 1
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			for h := range 7 * 24 {
				p := Params{Start: start + int64(h)*3600_000, Step: 30_000, Points: 121, Ratio: 2, For: 5 * 60_000}
				var factor func(int64) float64
				if tc.factor != nil {
					factor = tc.factor(p.Start + 20*60_000)
				}
				obs := promql.Matrix{generated(ls, p, 0, rng, weekShape, factor)}
				base := promql.Matrix{generated(ls, p, week, rng, weekShape, nil)}
				var got []Direction
				for _, s := range Detect(obs, base, p) {
					for _, sh := range s.Shifts {
						require.False(t, sh.Open || sh.Truncated, "hour %d: %+v", h, sh)
						require.Equal(t, p.Start+20*60_000, sh.Start.T, "hour %d", h)
						got = append(got, sh.Direction)
					}
				}
				require.Equal(t, tc.want, got, "hour %d of the week", h)
			}
		})
	}
}

// TestDetectCycleWithoutBaseline shows what the baseline is for: the same
// daily cycle compared with an hour earlier instead is a shift every
// morning.
func TestDetectCycleWithoutBaseline(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 23, 7, 30, 0, 0, time.UTC).UnixMilli()
	p := Params{Start: start, Step: 30_000, Points: 121, Ratio: 2, For: 5 * 60_000}
	ls := labels.FromStrings("service", "checkout")
	obs := promql.Matrix{generated(ls, p, 0, rng, weekShape, nil)}
	hourAgo := promql.Matrix{generated(ls, p, 3600_000, rng, weekShape, nil)}
	got := Detect(obs, hourAgo, p)
	require.Len(t, got, 1)
	require.NotEmpty(t, got[0].Shifts)
	require.Equal(t, Up, got[0].Shifts[0].Direction)
}

func TestEndAfter(t *testing.T) {
	p := Params{Start: 0, Step: 60_000, Points: 10, Ratio: 2}
	obs := promql.Series{Metric: labels.FromStrings("a", "b")}
	base := promql.Series{Metric: labels.FromStrings("a", "b")}
	// up up _ up normal down normal ...
	for i, v := range []float64{30, 30, math.NaN(), 30, 10, 3, 10, 10, 10, 10} {
		if !math.IsNaN(v) {
			obs.Floats = append(obs.Floats, promql.FPoint{T: int64(i) * 60_000, F: v})
		}
		base.Floats = append(base.Floats, promql.FPoint{T: int64(i) * 60_000, F: 10})
	}
	s := Detect(promql.Matrix{obs}, promql.Matrix{base}, p)[0]
	stop, peak, ok := s.EndAfter(0, Up)
	require.True(t, ok)
	require.Equal(t, int64(4*60_000), stop.T)
	require.Equal(t, 30.0, peak.Observed)
	stop, _, ok = s.EndAfter(90_000, Up) // between points: the next one on
	require.True(t, ok)
	require.Equal(t, int64(4*60_000), stop.T)
	stop, _, ok = s.EndAfter(5*60_000, Down)
	require.True(t, ok)
	require.Equal(t, int64(6*60_000), stop.T)
	_, _, ok = s.EndAfter(10*60_000, Up)
	require.False(t, ok, "after the run")
}
