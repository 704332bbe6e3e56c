package alerting

import (
	"context"

	"github.com/prometheus/prometheus/rules"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/tidemark/tidemark/storage"
)

// Retriever returns the rule groups and alerting rules of the organization
// in ctx (see storage.WithOrg) for Prometheus's /api/v1/rules and
// /api/v1/alerts, or nil when it has no rules.
//
// The active alerts it hands out carry the change context: Prometheus's
// API reads the live alerts of a rule, so their change_events annotations
// are set just before (from a cache of contextCacheTTL). Every evaluation
// expands the rule's own annotations again; an evaluation that falls
// between the two can answer one response without the context.
func (m *Manager) Retriever(ctx context.Context) v1.RulesRetriever {
	slug, ok := storage.OrgFrom(ctx)
	if !ok {
		return nil
	}
	o := m.org(slug)
	if o == nil {
		return nil
	}
	return &retriever{m: m, o: o, ctx: ctx}
}

type retriever struct {
	m   *Manager
	o   *orgRules
	ctx context.Context
}

// RuleGroups implements v1.RulesRetriever.
func (r *retriever) RuleGroups() []*rules.Group {
	groups := r.m.groups(r.o)
	var ars []*rules.AlertingRule
	for _, g := range groups {
		ars = append(ars, g.AlertingRules()...)
	}
	r.m.decorate(r.ctx, r.o.slug, ars)
	return groups
}

// AlertingRules implements v1.RulesRetriever.
func (r *retriever) AlertingRules() []*rules.AlertingRule {
	ars := r.m.alertingRules(r.o)
	r.m.decorate(r.ctx, r.o.slug, ars)
	return ars
}

// decorate sets the change context on the active alerts of rules. The
// context is looked up outside the rules' locks.
func (m *Manager) decorate(ctx context.Context, org string, ars []*rules.AlertingRule) {
	for _, ar := range ars {
		active := ar.ActiveAlerts()
		if len(active) == 0 {
			continue
		}
		byAlert := make(map[uint64]contextTexts, len(active))
		for _, a := range active {
			ac, err := m.finder.cached(ctx, org, a.Labels, a.ActiveAt)
			byAlert[a.Labels.Hash()] = m.finder.texts(ac, err)
		}
		ar.ForEachActiveAlert(func(a *rules.Alert) {
			if c, ok := byAlert[a.Labels.Hash()]; ok {
				a.Annotations = withContext(a.Annotations, c)
			}
		})
	}
}
