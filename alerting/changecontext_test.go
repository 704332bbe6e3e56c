package alerting

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
)

// fakeEvents is one organization's event log in memory, answering List as
// events.Service does: events of q.Org in [Start, End] with q.Name,
// matchers applied, newest first (by time, then by position in the log),
// at most Limit of them (0: all) with a NextCursor when the page is full,
// and a Cursor continuing after the event it names.
type fakeEvents struct {
	org   string // "" is acme
	evs   []events.Logged
	calls int
	// queries are the queries List was asked, in order.
	queries []events.ListQuery
}

func (f *fakeEvents) MaxDuration() time.Duration { return 24 * time.Hour }

func (f *fakeEvents) List(_ context.Context, q events.ListQuery) (events.ListResult, error) {
	f.calls++
	f.queries = append(f.queries, q)
	res := events.ListResult{Events: []events.Logged{}}
	if q.Org != cmp.Or(f.org, "acme") {
		return res, nil
	}
	var before *[2]int64
	if q.Cursor != "" {
		var c [2]int64
		if _, err := fmt.Sscanf(q.Cursor, "%d:%d", &c[0], &c[1]); err != nil {
			return events.ListResult{}, fmt.Errorf("cursor %q is not one this server returned", q.Cursor)
		}
		before = &c
	}
	evs := slices.Clone(f.evs)
	for i := range evs {
		if evs[i].Seq == 0 {
			evs[i].Seq = int64(i + 1)
		}
	}
	slices.SortStableFunc(evs, func(a, b events.Logged) int {
		return cmp.Or(cmp.Compare(b.Time, a.Time), cmp.Compare(b.Seq, a.Seq))
	})
	for _, e := range evs {
		if e.Time < q.Start || e.Time > q.End || (q.Name != "" && e.Name != q.Name) {
			continue
		}
		if before != nil && (e.Time > before[0] || e.Time == before[0] && e.Seq >= before[1]) {
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
		if !ok {
			continue
		}
		res.Events = append(res.Events, e)
		if len(res.Events) == q.Limit {
			res.NextCursor = fmt.Sprintf("%d:%d", e.Time, e.Seq)
			break
		}
	}
	return res, nil
}

// TestFakeEventsListsAsTheService holds the fake to what the alerting code
// relies on of events.Service.List.
func TestFakeEventsListsAsTheService(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	fe := &fakeEvents{}
	for i := range 7 {
		name := "deploy"
		if i%2 == 1 {
			name = "scale"
		}
		// Two events at each time: the later in the log lists first.
		fe.evs = append(fe.evs, logged(fmt.Sprint(i), name, "start", t0.Add(time.Duration(i/2)*time.Minute), map[string]string{"service": "checkout"}))
	}
	ids := func(res events.ListResult) (out []string) {
		for _, e := range res.Events {
			out = append(out, e.ID)
		}
		return out
	}
	q := events.ListQuery{Org: "acme", Start: 0, End: t0.Add(time.Hour).UnixMilli(), Limit: 3}
	var pages [][]string
	for {
		res, err := fe.List(context.Background(), q)
		require.NoError(t, err)
		pages = append(pages, ids(res))
		if res.NextCursor == "" {
			break
		}
		q.Cursor = res.NextCursor
	}
	require.Equal(t, [][]string{{"6", "5", "4"}, {"3", "2", "1"}, {"0"}}, pages)

	res, err := fe.List(context.Background(), events.ListQuery{Org: "acme", Start: t0.Add(time.Minute).UnixMilli(), End: t0.Add(2 * time.Minute).UnixMilli(), Name: "deploy"})
	require.NoError(t, err)
	require.Equal(t, []string{"4", "2"}, ids(res), "[Start, End] inclusive, one name, no limit")
	require.Empty(t, res.NextCursor)

	res, err = fe.List(context.Background(), events.ListQuery{Org: "globex", Start: 0, End: t0.Add(time.Hour).UnixMilli()})
	require.NoError(t, err)
	require.Empty(t, res.Events, "another organization's log")
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

// TestChangeContextPastOnePage: more events in the lookback than one
// lookup returns (listLimit) do not hide the alert's own changes: the
// context is the newest MaxEvents matching events, however many others
// came after them.
func TestChangeContextPastOnePage(t *testing.T) {
	alertAt := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	alert := labels.FromStrings("alertname", "CheckoutErrors", "service", "checkout", "env", "prod")
	matchLabels := []string{"service", "namespace", "env", "app"}

	// build logs, oldest first: an open rollout from before the window,
	// the checkout deploy 20 minutes before the alert, then noise events
	// after it, spread over the 20 minutes, each made by noise(i).
	build := func(n int, noise func(i int) map[string]string) *fakeEvents {
		fe := &fakeEvents{}
		rollout := logged("rollout", "checkout-rollout", "start", alertAt.Add(-3*time.Hour), map[string]string{"service": "checkout"})
		rollout.Open = true
		fe.evs = append(fe.evs, rollout, logged("deploy", "checkout-deploy", "start", alertAt.Add(-20*time.Minute), map[string]string{"service": "checkout", "env": "prod"}))
		step := 20 * time.Minute / time.Duration(n+1)
		for i := range n {
			fe.evs = append(fe.evs, logged(fmt.Sprint("noise-", i), "noise", "start", alertAt.Add(-20*time.Minute+time.Duration(i+1)*step), noise(i)))
		}
		return fe
	}
	names := func(evs []ContextEvent) (out []string) {
		for _, e := range evs {
			out = append(out, e.Name)
		}
		return out
	}

	t.Run("other services' events", func(t *testing.T) {
		// 3000 events of other services after the deploy: more than a
		// page, none of them the alert's.
		fe := build(3*listLimit, func(i int) map[string]string {
			return map[string]string{"service": fmt.Sprint("svc-", i%50), "env": "prod"}
		})
		f := newContextFinder(fe, ContextOptions{Lookback: 30 * time.Minute, MatchLabels: matchLabels, MaxEvents: 10})
		evs, err := f.find(context.Background(), "acme", alert, alertAt)
		require.NoError(t, err)
		require.Equal(t, []string{"checkout-deploy", "checkout-rollout"}, names(evs))
	})

	t.Run("events that share no label with the alert", func(t *testing.T) {
		// Events that name only a namespace, which the alert lacks: no
		// conflict, nothing shared. 2500 of them take three pages.
		fe := build(2500, func(int) map[string]string { return map[string]string{"namespace": "shop"} })
		f := newContextFinder(fe, ContextOptions{Lookback: 30 * time.Minute, MatchLabels: matchLabels, MaxEvents: 10})
		evs, err := f.find(context.Background(), "acme", alert, alertAt)
		require.NoError(t, err)
		require.Equal(t, []string{"checkout-deploy", "checkout-rollout"}, names(evs))
		for _, q := range fe.queries {
			require.LessOrEqual(t, q.Limit, listLimit, "every lookup is bounded")
			require.NotZero(t, q.Limit)
		}
	})

	t.Run("the newest MaxEvents, and no more lookups than they need", func(t *testing.T) {
		// Every 100th noise event is the alert's: 30 of them, newer than
		// the deploy.
		fe := build(3*listLimit, func(i int) map[string]string {
			if i%100 == 99 {
				return map[string]string{"service": "checkout"}
			}
			return map[string]string{"namespace": "shop"}
		})
		f := newContextFinder(fe, ContextOptions{Lookback: 30 * time.Minute, MatchLabels: matchLabels, MaxEvents: 5})
		evs, err := f.find(context.Background(), "acme", alert, alertAt)
		require.NoError(t, err)
		require.Len(t, evs, 5)
		for i, e := range evs {
			require.Equal(t, "noise", e.Name)
			want := logged("", "", "", alertAt.Add(-20*time.Minute+time.Duration(3*listLimit-i*100)*(20*time.Minute/time.Duration(3*listLimit+1))), nil)
			require.Equal(t, want.Timestamp, e.Timestamp, "event %d", i)
		}
		require.Len(t, fe.queries, 1, "the first page held the newest five: no further lookup")
	})

	t.Run("the documented bound", func(t *testing.T) {
		// Past contextMaxPages pages of events that share nothing with the
		// alert, the lookup of the window stops: the deploy behind them
		// is not found. The open rollout, looked up apart, still is.
		fe := build(contextMaxPages*listLimit+1, func(int) map[string]string { return map[string]string{"namespace": "shop"} })
		f := newContextFinder(fe, ContextOptions{Lookback: 30 * time.Minute, MatchLabels: matchLabels, MaxEvents: 10})
		evs, err := f.find(context.Background(), "acme", alert, alertAt)
		require.NoError(t, err)
		require.Equal(t, []string{"checkout-rollout"}, names(evs))
		require.Len(t, fe.queries, contextMaxPages+1, "contextMaxPages lookups of the window, one before it")
	})
}

// TestChangeContextLabelValuesAreLiteral: the alert's label values select
// events as they are, not as regular expressions.
func TestChangeContextLabelValuesAreLiteral(t *testing.T) {
	alertAt := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	fe := &fakeEvents{}
	for i, svc := range []string{"web+api", "webbapi", "web", "(web+api)|x"} {
		fe.evs = append(fe.evs, logged(fmt.Sprint(i), "deploy-"+svc, "start", alertAt.Add(-time.Duration(10-i)*time.Minute), map[string]string{"service": svc}))
	}
	f := newContextFinder(fe, ContextOptions{Lookback: 30 * time.Minute, MatchLabels: []string{"service"}, MaxEvents: 10})
	for _, svc := range []string{"web+api", "(web+api)|x"} {
		evs, err := f.find(context.Background(), "acme", labels.FromStrings("service", svc), alertAt)
		require.NoError(t, err)
		require.Len(t, evs, 1, svc)
		require.Equal(t, "deploy-"+svc, evs[0].Name)
	}
}
