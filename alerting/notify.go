package alerting

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/util/strutil"
)

// LabelOrg is the label every sent alert carries: its organization. A
// label of that name from the series or the rule is overwritten, so that a
// receiver can trust it.
const LabelOrg = "org"

// notifyFunc is the rules.NotifyFunc of an organization: as Prometheus's
// rules.SendAlerts, plus the org label and the change context, computed
// now. Alerts are handed to every sender; they are not modified after.
func (m *Manager) notifyFunc(org string) rules.NotifyFunc {
	return func(ctx context.Context, expr string, alerts ...*rules.Alert) {
		if len(alerts) == 0 || len(m.opts.Senders) == 0 {
			return
		}
		out := make([]*notifier.Alert, 0, len(alerts))
		for _, a := range alerts {
			lb := labels.NewBuilder(a.Labels)
			lb.Set(LabelOrg, org)
			ac, err := m.finder.fresh(ctx, org, a.Labels, a.ActiveAt)
			if err != nil {
				m.logger.Warn("read the change context of an alert", "org", org, "alert", a.Labels.Get(labels.AlertName), "err", err)
			}
			na := &notifier.Alert{
				StartsAt:     a.FiredAt,
				Labels:       lb.Labels(),
				Annotations:  withContext(a.Annotations, m.finder.texts(ac, err)),
				GeneratorURL: m.extURL.String() + strutil.TableLinkForExpression(expr),
			}
			if !a.ResolvedAt.IsZero() {
				na.EndsAt = a.ResolvedAt
			} else {
				na.EndsAt = a.ValidUntil
			}
			out = append(out, na)
		}
		m.notified.WithLabelValues(org).Add(float64(len(out)))
		for _, s := range m.opts.Senders {
			s.Send(out...)
		}
	}
}
