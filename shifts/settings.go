package shifts

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// Settings configure the detector of one organization: the traffic_shifts
// section of the config file (docs/sources.md).
type Settings struct {
	// Interval is how often the detector runs.
	Interval time.Duration
	// Lookback is how much history each run evaluates again, so that data
	// that arrives late and the time the detector was down are covered.
	Lookback time.Duration
	// Step is the resolution of the range queries; 0: Interval. Shift
	// times, and so event ids, sit on its grid (multiples of Step since
	// the epoch).
	Step time.Duration
	// Signals are the series watched.
	Signals []Signal
}

// Signal is one query watched for shifts against its own past.
type Signal struct {
	// Name is the signal label of its events.
	Name string
	// Query is a PromQL expression returning an instant vector; the labels
	// of its series label the events.
	Query string
	// BaselineOffset is how long ago its baseline is: the same query
	// evaluated that much earlier.
	BaselineOffset time.Duration
	// Ratio is the threshold: observed/baseline >= Ratio is a shift up,
	// <= 1/Ratio a shift down. Greater than 1.
	Ratio float64
	// For is how long the ratio must hold before it is a shift.
	For time.Duration
	// MinValue is the traffic below which nothing is a shift: a point is
	// compared only when its observed or its baseline value reaches it.
	MinValue float64
}

// The defaults of the config file (DESIGN.md).
const (
	DefaultInterval       = 30 * time.Second
	DefaultLookback       = time.Hour
	DefaultBaselineOffset = 7 * 24 * time.Hour
	DefaultRatio          = 2.0
	DefaultFor            = 5 * time.Minute
)

// MaxPoints is the most points one range query of a signal may have
// (Lookback/Step + 1): Prometheus's limit on a range query's resolution.
const MaxPoints = 11000

// maxNameBytes bounds a signal's name, a label value of its events.
const maxNameBytes = 128

// step is the resolution the settings give.
func (s Settings) step() time.Duration {
	if s.Step > 0 {
		return s.Step
	}
	return s.Interval
}

// Check validates settings whose defaults are filled in. Errors name the
// field as the config file does ("signals[0].query"), its value and what
// would be accepted.
func (s Settings) Check() error {
	if s.Interval < time.Second {
		return fmt.Errorf("interval: %s is not accepted; accepted: 1s or more", model.Duration(s.Interval))
	}
	if s.Step != 0 && (s.Step < time.Second || s.Step%time.Millisecond != 0) {
		return fmt.Errorf("step: %s is not accepted; accepted: a whole number of milliseconds, 1s or more (or unset: the interval)", model.Duration(s.Step))
	}
	step := s.step()
	if s.Lookback < step {
		return fmt.Errorf("lookback: %s is not accepted; accepted: at least one step (%s)", model.Duration(s.Lookback), model.Duration(step))
	}
	if n := s.Lookback/step + 1; n > MaxPoints {
		return fmt.Errorf("lookback: %s at a step of %s is %d points per query; accepted: at most %d points (a longer step, or a shorter lookback)", model.Duration(s.Lookback), model.Duration(step), n, MaxPoints)
	}
	seen := map[string]int{}
	p := parser.NewParser(parser.Options{})
	for i, sig := range s.Signals {
		field := "signals[" + strconv.Itoa(i) + "]"
		if err := sig.check(p, s.Lookback); err != nil {
			return fmt.Errorf("%s.%w", field, err)
		}
		if prev, dup := seen[sig.Name]; dup {
			return fmt.Errorf("%s.name: %q is declared twice (also signals[%d]); accepted: a distinct name per signal", field, sig.Name, prev)
		}
		seen[sig.Name] = i
	}
	return nil
}

func (sig Signal) check(p parser.Parser, lookback time.Duration) error {
	if sig.Name == "" {
		return errors.New("name: missing; accepted: a non-empty name (the signal label of its events)")
	}
	if len(sig.Name) > maxNameBytes || !utf8.ValidString(sig.Name) {
		return fmt.Errorf("name: %q is not accepted; accepted: at most %d bytes of UTF-8", sig.Name, maxNameBytes)
	}
	if sig.Query == "" {
		return errors.New("query: missing; accepted: a PromQL expression returning an instant vector")
	}
	expr, err := p.ParseExpr(sig.Query)
	if err != nil {
		return fmt.Errorf("query: %q does not parse: %v; accepted: a PromQL expression returning an instant vector", sig.Query, err)
	}
	if t := expr.Type(); t != parser.ValueTypeVector && t != parser.ValueTypeScalar {
		return fmt.Errorf("query: %q returns a %s; accepted: a PromQL expression returning an instant vector (a range query of it is evaluated)", sig.Query, parser.DocumentedType(t))
	}
	if sig.BaselineOffset <= 0 {
		return fmt.Errorf("baseline_offset: %s is not accepted; accepted: a duration greater than 0 (how long ago the baseline is)", model.Duration(sig.BaselineOffset))
	}
	if math.IsNaN(sig.Ratio) || math.IsInf(sig.Ratio, 0) || sig.Ratio <= 1 {
		return fmt.Errorf("ratio: %v is not accepted; accepted: a number greater than 1 (observed/baseline at or beyond ratio, or at or below 1/ratio, is a shift)", sig.Ratio)
	}
	if sig.For < 0 || sig.For >= lookback {
		return fmt.Errorf("for: %s is not accepted; accepted: 0 or more and shorter than the lookback (%s), which must see a shift hold", model.Duration(sig.For), model.Duration(lookback))
	}
	if math.IsNaN(sig.MinValue) || math.IsInf(sig.MinValue, 0) || sig.MinValue < 0 {
		return fmt.Errorf("min_value: %v is not accepted; accepted: a number of 0 or more", sig.MinValue)
	}
	return nil
}
