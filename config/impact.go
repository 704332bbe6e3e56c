package config

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidemark/tidemark/impact"
	"github.com/tidemark/tidemark/judge"
)

// Impact configures how change events are scored on their signals
// (docs/impact.md). At the top level it applies to every organization;
// organizations[].impact overrides it for one, field by field (a signals
// list replaces the whole list). Fields left out take the defaults; an
// empty signals list ([]) turns scoring off.
type Impact struct {
	MatchLabels []string       `yaml:"match_labels"`
	Before      model.Duration `yaml:"before"`
	After       model.Duration `yaml:"after"`
	MinAfter    model.Duration `yaml:"min_after"`
	Step        model.Duration `yaml:"step"`
	Delay       model.Duration `yaml:"delay"`
	Confidence  float64        `yaml:"confidence"`
	MinPoints   int            `yaml:"min_points"`
	Signals     []ImpactSignal `yaml:"signals"`
}

// ImpactSignal is one signal: a PromQL template with {{.Matchers}}.
type ImpactSignal struct {
	Name            string  `yaml:"name"`
	Query           string  `yaml:"query"`
	Direction       string  `yaml:"direction"`
	Weight          float64 `yaml:"weight"`
	AllowedIncrease float64 `yaml:"allowed_increase"`
	AllowedDecrease float64 `yaml:"allowed_decrease"`
}

// resolveImpact checks the impact settings of the top level and of every
// organization, and keeps them compiled.
func (c *Config) resolveImpact() error {
	top, err := c.Impact.settings(nil)
	if err != nil {
		return fmt.Errorf("impact.%w", err)
	}
	c.impact = map[string]*impact.Settings{"": top}
	for i := range c.Organizations {
		o := &c.Organizations[i]
		if o.Impact == nil {
			continue
		}
		s, err := o.Impact.settings(c.Impact)
		if err != nil {
			return fmt.Errorf("organizations[%d] (%s) impact.%w", i, o.Slug, err)
		}
		c.impact[o.Slug] = s
	}
	return nil
}

// ImpactSettings returns an organization's checked impact settings. It is
// safe for concurrent use.
func (c *Config) ImpactSettings(org string) *impact.Settings {
	if s, ok := c.impact[org]; ok {
		return s
	}
	if s, ok := c.impact[""]; ok {
		return s
	}
	def := impact.DefaultSettings()
	return &def
}

// settings are i over base (nil: none) as checked impact settings.
func (i *Impact) settings(base *Impact) (*impact.Settings, error) {
	m := Impact{}
	if base != nil {
		m = *base
	}
	if i != nil {
		if i.MatchLabels != nil {
			m.MatchLabels = i.MatchLabels
		}
		for _, d := range []struct{ dst, src *model.Duration }{
			{&m.Before, &i.Before}, {&m.After, &i.After}, {&m.MinAfter, &i.MinAfter}, {&m.Step, &i.Step}, {&m.Delay, &i.Delay},
		} {
			if *d.src != 0 {
				*d.dst = *d.src
			}
		}
		if i.Confidence != 0 {
			m.Confidence = i.Confidence
		}
		if i.MinPoints != 0 {
			m.MinPoints = i.MinPoints
		}
		if i.Signals != nil {
			m.Signals = i.Signals
		}
	}
	s := &impact.Settings{
		MatchLabels: m.MatchLabels,
		Before:      time.Duration(m.Before),
		After:       time.Duration(m.After),
		MinAfter:    time.Duration(m.MinAfter),
		Step:        time.Duration(m.Step),
		Delay:       time.Duration(m.Delay),
		Confidence:  m.Confidence,
		MinPoints:   m.MinPoints,
	}
	if m.Signals != nil {
		s.Signals = make([]impact.Signal, 0, len(m.Signals))
	}
	for j, sig := range m.Signals {
		d, err := judge.ParseDirection(sig.Direction)
		if err != nil {
			return nil, fmt.Errorf("signals[%d] (%s).direction: %q is not accepted; accepted: increase, decrease or either", j, sig.Name, sig.Direction)
		}
		s.Signals = append(s.Signals, impact.Signal{
			Name: sig.Name, Query: sig.Query, Direction: d, Weight: sig.Weight,
			AllowedIncrease: sig.AllowedIncrease, AllowedDecrease: sig.AllowedDecrease,
		})
	}
	if err := s.Check(); err != nil {
		return nil, err
	}
	return s, nil
}
