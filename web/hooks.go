package web

import (
	"io"
	"net/http"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/sources"
	"github.com/tidemark/tidemark/storage"
)

// The receivers of progressive-delivery tools' notifications. What a
// payload becomes is decided in package sources; these handlers read the
// body, look up what a conversion needs, and write.

// flaggerHook receives Flagger's event webhook (sources.Flagger).
func (a *eventsAPI) flaggerHook(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	conv, err := sources.Flagger(body)
	return a.answerConversion(r, org, conv, err)
}

// argoRolloutsHook receives Argo Rollouts notifications
// (sources.ArgoRollouts), which need the rollout's open events.
func (a *eventsAPI) argoRolloutsHook(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	n, err := sources.ParseRolloutNotification(body)
	if err != nil {
		return nil, sourceError(err)
	}
	open, err := a.openOf(r, org, n)
	if err != nil {
		return nil, err
	}
	conv, err := sources.ArgoRollouts(n, open)
	return a.answerConversion(r, org, conv, err)
}

// openOf returns the open events of a rollout: <rollout> and its stages.
func (a *eventsAPI) openOf(r *http.Request, org string, n sources.RolloutNotification) ([]sources.OpenEvent, error) {
	nameRE, base := n.OpenSelector()
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "event_name", nameRE)}
	for k, v := range base {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, k, v))
	}
	evs, err := a.svc.Open(r.Context(), org, ms)
	if err != nil {
		return nil, err
	}
	var open []sources.OpenEvent
	for _, e := range evs {
		open = append(open, sources.OpenEvent{Name: e.Name, Labels: e.Labels})
	}
	return open, nil
}
