package alerting

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
)

// fakeEvents is an event log in memory, answering List as events.Service
// does: events in [Start, End], matchers applied, newest first.
type fakeEvents struct {
	evs   []events.Logged
	calls int
}

func (f *fakeEvents) MaxDuration() time.Duration { return 24 * time.Hour }

func (f *fakeEvents) List(_ context.Context, q events.ListQuery) (events.ListResult, error) {
	f.calls++
	res := events.ListResult{Events: []events.Logged{}}
	for i := len(f.evs) - 1; i >= 0; i-- {
		e := f.evs[i]
		if e.Time < q.Start || e.Time > q.End {
			continue
		}
		ok := true
		for _, m := range q.Matchers {
			v := e.Labels[m.Name]
			switch m.Name {
			case "event_name":
				v = e.Name
			case "event_state":
				v = e.State
			}
			ok = ok && m.Matches(v)
		}
		if ok {
			res.Events = append(res.Events, e)
		}
	}
	return res, nil
}

// logged makes a log entry; evs must be added in time order.
func logged(id, name, state string, t time.Time, lbls map[string]string) events.Logged {
	return events.Logged{ID: id, Name: name, State: state, Time: t.UnixMilli(), Timestamp: t.UTC().Format(time.RFC3339), Labels: lbls, Links: json.RawMessage("[]")}
}

func TestChangeContext(t *testing.T) {
	alertAt := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	hours := func(h float64) *float64 { s := h * 3600; return &s } // Duration is in seconds
	fe := &fakeEvents{}
	add := func(e events.Logged) { fe.evs = append(fe.evs, e) }

	// A long canary rollout, started hours before and still open.
	open := logged("1", "checkout-rollout", "start", alertAt.Add(-3*time.Hour), map[string]string{"service": "checkout", "env": "prod"})
	open.Open = true
	add(open)
	// A rollout that ended before the window: not context.
	ended := logged("2", "checkout-old", "start", alertAt.Add(-2*time.Hour), map[string]string{"service": "checkout"})
	ended.Duration = hours(0.5)
	add(ended)
	// A start before the window whose stop came after the alert started.
	long := logged("3", "checkout-migration", "start", alertAt.Add(-time.Hour), map[string]string{"service": "checkout"})
	long.Duration = hours(2)
	add(long)
	// In the window.
	deploy := logged("4", "checkout-deploy", "start", alertAt.Add(-10*time.Minute), map[string]string{"service": "checkout", "env": "prod", "version": "v2"})
	deploy.Links = json.RawMessage(`[{"href":"https://ci.example/run/42","text":"pipeline"},{"href":"https://x.example"}]`)
	add(deploy)
	add(logged("5", "billing-deploy", "start", alertAt.Add(-9*time.Minute), map[string]string{"service": "billing", "env": "prod"}))
	add(logged("6", "node-pool-upgrade", "start", alertAt.Add(-8*time.Minute), map[string]string{"env": "prod"}))
	add(logged("7", "staging-flag", "start", alertAt.Add(-7*time.Minute), map[string]string{"env": "staging"}))
	add(logged("8", "unlabelled", "start", alertAt.Add(-6*time.Minute), map[string]string{}))
	add(logged("9", "checkout-deploy", "stop", alertAt.Add(-5*time.Minute), map[string]string{"service": "checkout", "env": "prod", "version": "v2"}))
	// After the alert started: not what caused it.
	add(logged("10", "checkout-rollback", "start", alertAt.Add(time.Minute), map[string]string{"service": "checkout"}))

	f := newContextFinder(fe, ContextOptions{Lookback: 30 * time.Minute, MatchLabels: []string{"service", "namespace", "env", "app"}, MaxEvents: 10})
	alert := labels.FromStrings("alertname", "CheckoutErrors", "service", "checkout", "env", "prod", "severity", "page")
	evs, err := f.find(context.Background(), "acme", alert, alertAt)
	require.NoError(t, err)
	var names []string
	for _, e := range evs {
		names = append(names, e.Name+"/"+e.State)
	}
	require.Equal(t, []string{"checkout-deploy/stop", "node-pool-upgrade/start", "checkout-deploy/start", "checkout-migration/start", "checkout-rollout/start"}, names)
	require.Equal(t, []events.Link{{Href: "https://ci.example/run/42", Text: "pipeline"}, {Href: "https://x.example"}}, evs[2].Links)
	require.Equal(t, []events.Link{}, evs[0].Links)

	text, js := f.contextAnnotations(evs, nil)
	require.Contains(t, text, "checkout-deploy start at 2026-11-25T09:50:00Z {env=\"prod\", service=\"checkout\", version=\"v2\"} pipeline: https://ci.example/run/42\n")
	require.Contains(t, text, "checkout-deploy stop at 2026-11-25T09:55:00Z {env=\"prod\", service=\"checkout\", version=\"v2\"}\n")
	var back []ContextEvent
	require.NoError(t, json.Unmarshal([]byte(js), &back))
	require.Equal(t, evs, back)

	// MaxEvents keeps the newest.
	f.opts.MaxEvents = 2
	evs, err = f.find(context.Background(), "acme", alert, alertAt)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, "checkout-deploy", evs[0].Name)
	require.Equal(t, "node-pool-upgrade", evs[1].Name)

	// An alert with none of the match labels has no context, and costs no
	// lookup.
	calls := fe.calls
	evs, err = f.find(context.Background(), "acme", labels.FromStrings("alertname", "Watchdog"), alertAt)
	require.NoError(t, err)
	require.Empty(t, evs)
	require.Equal(t, calls, fe.calls)
	text, js = f.contextAnnotations(evs, nil)
	require.Equal(t, "no change events sharing service, namespace, env, app with this alert in the 30m before it started", text)
	require.Equal(t, "[]", js)
}

func TestMatchesAlert(t *testing.T) {
	f := newContextFinder(&fakeEvents{}, ContextOptions{MatchLabels: []string{"service", "namespace", "env", "app"}})
	alert := labels.FromStrings("alertname", "X", "service", "checkout", "env", "prod")
	for _, tc := range []struct {
		name  string
		event map[string]string
		want  bool
	}{
		{"same service", map[string]string{"service": "checkout"}, true},
		{"same service and env", map[string]string{"service": "checkout", "env": "prod"}, true},
		{"same service, a label the alert lacks", map[string]string{"service": "checkout", "app": "web"}, true},
		{"same env only: an env-wide change", map[string]string{"env": "prod"}, true},
		{"another service in the same env", map[string]string{"service": "billing", "env": "prod"}, false},
		{"same service in another env", map[string]string{"service": "checkout", "env": "staging"}, false},
		{"only labels that are not match labels", map[string]string{"team": "payments"}, false},
		{"only a match label the alert lacks", map[string]string{"namespace": "shop"}, false},
		{"no labels", map[string]string{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, f.matchesAlert(alert, tc.event))
		})
	}
}

func TestContextCache(t *testing.T) {
	fe := &fakeEvents{}
	f := newContextFinder(fe, ContextOptions{Lookback: time.Hour, MatchLabels: []string{"service"}, MaxEvents: 10})
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f.now = func() time.Time { return now }
	alert := labels.FromStrings("service", "checkout")
	_, err := f.cached(context.Background(), "acme", alert, now)
	require.NoError(t, err)
	calls := fe.calls
	_, err = f.cached(context.Background(), "acme", alert, now)
	require.NoError(t, err)
	require.Equal(t, calls, fe.calls, "served from the cache")
	_, err = f.cached(context.Background(), "globex", alert, now)
	require.NoError(t, err)
	require.Greater(t, fe.calls, calls, "organizations do not share entries")
	calls = fe.calls
	now = now.Add(contextCacheTTL)
	_, err = f.cached(context.Background(), "acme", alert, now.Add(-contextCacheTTL))
	require.NoError(t, err)
	require.Greater(t, fe.calls, calls, "expired")
	calls = fe.calls
	_, err = f.fresh(context.Background(), "acme", alert, now.Add(-contextCacheTTL))
	require.NoError(t, err)
	require.Greater(t, fe.calls, calls, "fresh never uses the cache")
}
