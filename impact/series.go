package impact

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

// The series a scored change becomes, at the time it was scored:
//
//	change_event_impact{event_name, signal, <labels>}   after/before of a signal's medians
//	change_event_impact_score{event_name, <labels>}     the judge's score, 0 to 100
//
// A signal without data, or whose median before is 0, has no
// change_event_impact sample; an event with no signal with data has no
// score. The event's own label signal, if it has one, is replaced.
const (
	MetricImpact      = "change_event_impact"
	MetricImpactScore = "change_event_impact_score"
)

// writeSeries appends the series of the scored changes of org and commits
// them. Two changes of the same name and labels scored in the same
// millisecond are written a millisecond apart: a series has one sample
// per time.
func (s *Service) writeSeries(ctx context.Context, org string, batch []*scoredChange) error {
	st, err := s.opts.Backend.Org(org)
	if err != nil {
		return fmt.Errorf("open the storage of organization %q: %w", org, err)
	}
	app := st.AppenderV2(ctx)
	last := map[uint64]int64{}
	add := func(ls labels.Labels, t int64, v float64) {
		h := ls.Hash()
		if prev, ok := last[h]; ok && t <= prev {
			t = prev + 1
		}
		last[h] = t
		if _, err := app.Append(0, ls, 0, t, v, nil, nil, promstorage.AOptions{}); err != nil {
			s.logger.Debug("append impact sample", "org", org, "series", ls.String(), "err", err)
		}
	}
	for _, sc := range batch {
		at, err := time.Parse(time.RFC3339Nano, sc.imp.ScoredAt)
		if err != nil {
			return fmt.Errorf("scored_at %q: %w", sc.imp.ScoredAt, err)
		}
		t := at.UnixMilli()
		b := labels.NewBuilder(sc.c.Labels)
		b.Set("event_name", sc.c.Name)
		for _, si := range sc.imp.Signals {
			if r, ok := MedianRatio(si); ok {
				b.Set(labels.MetricName, MetricImpact)
				b.Set("signal", si.Name)
				add(b.Labels(), t, r)
			}
		}
		if sc.imp.Score != nil {
			b.Del("signal")
			b.Set(labels.MetricName, MetricImpactScore)
			add(b.Labels(), t, *sc.imp.Score)
		}
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("commit the impact series: %w", err)
	}
	return nil
}
