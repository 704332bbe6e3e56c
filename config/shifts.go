package config

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidemark/tidemark/shifts"
)

// TrafficShifts configures the traffic-shift detector (docs/sources.md).
// At the top level it applies to every organization;
// organizations[].traffic_shifts replaces it for one, and an empty one
// (traffic_shifts: {}) turns the detector off there. Unset durations and
// numbers take the defaults of package shifts.
type TrafficShifts struct {
	Interval model.Duration `yaml:"interval"`
	Lookback model.Duration `yaml:"lookback"`
	// Step is the resolution of the range queries; unset: the interval.
	Step    model.Duration `yaml:"step"`
	Signals []ShiftSignal  `yaml:"signals"`

	settings shifts.Settings
}

// ShiftSignal is one signal of the detector.
type ShiftSignal struct {
	Name           string         `yaml:"name"`
	Query          string         `yaml:"query"`
	BaselineOffset model.Duration `yaml:"baseline_offset"`
	Ratio          float64        `yaml:"ratio"`
	// For is a pointer so that for: 0s (no hold) differs from unset.
	For      *model.Duration `yaml:"for"`
	MinValue float64         `yaml:"min_value"`
}

// resolveTrafficShifts fills in the defaults of the top-level and the
// organizations' sections and checks them.
func (c *Config) resolveTrafficShifts() error {
	if c.TrafficShifts != nil {
		if err := c.TrafficShifts.resolve(); err != nil {
			return fmt.Errorf("traffic_shifts.%w", err)
		}
	}
	for i := range c.Organizations {
		o := &c.Organizations[i]
		if o.TrafficShifts == nil {
			continue
		}
		if err := o.TrafficShifts.resolve(); err != nil {
			return fmt.Errorf("organizations[%d] (%s) traffic_shifts.%w", i, o.Slug, err)
		}
	}
	return nil
}

func (ts *TrafficShifts) resolve() error {
	orDefault := func(d model.Duration, def time.Duration) time.Duration {
		if d == 0 {
			return def
		}
		return time.Duration(d)
	}
	s := shifts.Settings{
		Interval: orDefault(ts.Interval, shifts.DefaultInterval),
		Lookback: orDefault(ts.Lookback, shifts.DefaultLookback),
		Step:     time.Duration(ts.Step),
	}
	for _, sig := range ts.Signals {
		ratio := sig.Ratio
		if ratio == 0 {
			ratio = shifts.DefaultRatio
		}
		hold := shifts.DefaultFor
		if sig.For != nil {
			hold = time.Duration(*sig.For)
		}
		s.Signals = append(s.Signals, shifts.Signal{
			Name:           sig.Name,
			Query:          sig.Query,
			BaselineOffset: orDefault(sig.BaselineOffset, shifts.DefaultBaselineOffset),
			Ratio:          ratio,
			For:            hold,
			MinValue:       sig.MinValue,
		})
	}
	if err := s.Check(); err != nil {
		return err
	}
	ts.settings = s
	return nil
}

// TrafficShiftSettings returns the detector settings of an organization:
// its own section, else the top-level one. ok is false when neither is set
// or the section has no signals: the organization has no detector.
func (c *Config) TrafficShiftSettings(org string) (s shifts.Settings, ok bool) {
	ts := c.TrafficShifts
	for _, o := range c.Organizations {
		if o.Slug == org && o.TrafficShifts != nil {
			ts = o.TrafficShifts
		}
	}
	if ts == nil || len(ts.settings.Signals) == 0 {
		return shifts.Settings{}, false
	}
	return ts.settings, true
}

// CheckTrafficShiftLookback checks that every traffic_shifts section looks
// back at most backfill (--events.backfill-window): a shift is written at
// the time it began, and older events are refused.
func (c *Config) CheckTrafficShiftLookback(backfill time.Duration) error {
	check := func(where string, ts *TrafficShifts) error {
		if ts == nil || ts.settings.Lookback <= backfill {
			return nil
		}
		return fmt.Errorf("%s.lookback: %s is not accepted; accepted: at most the events' backfill window (--events.backfill-window, %s), since a shift is written at the time it began",
			where, model.Duration(ts.settings.Lookback), model.Duration(backfill))
	}
	if err := check("traffic_shifts", c.TrafficShifts); err != nil {
		return err
	}
	for i, o := range c.Organizations {
		if err := check(fmt.Sprintf("organizations[%d] (%s) traffic_shifts", i, o.Slug), o.TrafficShifts); err != nil {
			return err
		}
	}
	return nil
}
