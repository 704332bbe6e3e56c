package events

import (
	"math"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
)

// The series an event becomes (DESIGN.md, "The series an event becomes").
const (
	DefaultMetricName  = "change_events"
	ActiveMetricName   = "change_event_active"
	DurationMetricName = "change_event_duration_seconds"
)

// staleNaN is Prometheus's stale marker: a series ends at a sample with it.
var staleNaN = math.Float64frombits(value.StaleNaN)

// sample is one sample to append.
type sample struct {
	ls labels.Labels
	t  int64
	v  float64
}

// pairLabels are the labels of an event's active and duration series
// (without __name__): event_name and the event's own labels. A start and a
// stop pair when these are equal.
func pairLabels(name string, own labels.Labels) labels.Labels {
	b := labels.NewBuilder(own)
	b.Set("event_name", name)
	return b.Labels()
}

func withName(metric string, ls labels.Labels) labels.Labels {
	b := labels.NewBuilder(ls)
	b.Set(labels.MetricName, metric)
	return b.Labels()
}

// pointSamples are an event's samples of change_events and of the
// compatibility names.
func (s *Service) pointSamples(ev *Event) []sample {
	b := labels.NewBuilder(ev.Labels)
	b.Set("event_name", ev.Name)
	b.Set("event_state", string(ev.State))
	out := make([]sample, 0, 1+len(s.opts.CompatMetricNames))
	for _, name := range s.pointNames {
		b.Set(labels.MetricName, name)
		out = append(out, sample{ls: b.Labels(), t: ev.Time, v: ev.Value})
	}
	return out
}
