package alerting

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/rules"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// captured is a rules.Sender that keeps what it is sent.
type captured struct {
	mtx    sync.Mutex
	alerts []*notifier.Alert
}

func (c *captured) Send(alerts ...*notifier.Alert) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	c.alerts = append(c.alerts, alerts...)
}

func (c *captured) find(name string) *notifier.Alert {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	for _, a := range c.alerts {
		if a.Labels.Get(labels.AlertName) == name {
			return a
		}
	}
	return nil
}

type managerStack struct {
	db      *state.DB
	backend storage.Backend
	events  *events.Service
	sender  *captured
	m       *Manager
}

func newManagerStack(t *testing.T, ruleFiles map[string][]string) *managerStack {
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "state.db"))
	require.NoError(t, err)
	ctx := context.Background()
	for _, org := range []string{"acme", "globex"} {
		require.NoError(t, db.CreateOrg(ctx, org))
	}
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	backend := storage.NewEmbedded(logger, reg, storage.EmbeddedOptions{Dir: filepath.Join(dir, "tsdb"), Retention: 24 * time.Hour, OutOfOrderWindow: 7 * 24 * time.Hour})
	evs := events.NewService(logger, reg, db, backend, events.Options{})
	require.NoError(t, evs.Recover(ctx))
	go evs.Run()
	s := &managerStack{db: db, backend: backend, events: evs, sender: &captured{}}
	s.m, err = New(logger, reg, Options{
		Store: db, Backend: backend, Events: evs, Senders: []rules.Sender{s.sender}, RuleFiles: ruleFiles,
		EvaluationInterval: time.Second, ResendDelay: time.Second, SyncInterval: time.Hour,
		ExternalURL: "http://tidemark.example", QueryTimeout: time.Minute, LookbackDelta: 5 * time.Minute, MaxSamples: 1e6,
		Context: ContextOptions{Lookback: 30 * time.Minute, MatchLabels: []string{"service", "env"}, MaxEvents: 10},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		s.m.Stop()
		evs.Stop()
		backend.Close()
		db.Close()
	})
	return s
}

// gauge appends samples of a series to an organization's storage, every
// 10s over the last minute and a minute ahead.
func (s *managerStack) gauge(t *testing.T, org string, v float64, lbls ...string) {
	st, err := s.backend.Org(org)
	require.NoError(t, err)
	app := st.AppenderV2(context.Background())
	now := time.Now()
	for ts := now.Add(-time.Minute); ts.Before(now.Add(time.Minute)); ts = ts.Add(10 * time.Second) {
		_, err := app.Append(0, labels.FromStrings(lbls...), 0, ts.UnixMilli(), v, nil, nil, promstorage.AOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
}

func (s *managerStack) event(t *testing.T, org, body string) {
	evs, err := events.Decode([]byte(body), time.Now(), events.DefaultLimits)
	require.NoError(t, err)
	_, err = s.events.Write(context.Background(), org, evs)
	require.NoError(t, err)
}

func TestManagerPerOrganization(t *testing.T) {
	dir := t.TempDir()
	globexFile := filepath.Join(dir, "globex.yml")
	require.NoError(t, os.WriteFile(globexFile, []byte(`groups:
  - name: from-file
    interval: 1s
    rules:
      - alert: GlobexDown
        expr: up{service="checkout"} == 0
`), 0o644))
	s := newManagerStack(t, map[string][]string{"globex": {filepath.Join(dir, "*.yml")}})
	ctx := context.Background()

	s.gauge(t, "acme", 0.2, "__name__", "canary_error_ratio", "service", "checkout", "env", "prod")
	// globex has the same series name, but is healthy: its rules must not
	// see acme's data, nor acme's rules globex's.
	s.gauge(t, "globex", 0, "__name__", "canary_error_ratio", "service", "checkout", "env", "prod")
	s.gauge(t, "globex", 0, "__name__", "up", "service", "checkout")
	ago := time.Now().Add(-5 * time.Minute).UTC().Format(time.RFC3339)
	s.event(t, "acme", `[{"event_name":"checkout-20","timestamp":"`+ago+`","attributes":{"service":"checkout","env":"prod"},"links":[{"href":"https://ci.example/1","text":"run"}]},
	  {"event_name":"billing-20","timestamp":"`+ago+`","attributes":{"service":"billing","env":"prod"}}]`)
	s.event(t, "globex", `{"event_name":"checkout-globex","timestamp":"`+ago+`","attributes":{"service":"checkout","env":"prod"}}`)

	group := "name: canary\ninterval: 1s\nrules:\n  - alert: CanaryErrors\n    expr: canary_error_ratio > 0.05\n    labels: {severity: page, org: forged}\n    annotations: {summary: 'ratio {{ $value }}', change_events: forged}\n"
	for _, org := range []string{"acme", "globex"} {
		require.NoError(t, s.db.PutRuleGroup(ctx, state.RuleGroupRow{Org: org, Namespace: "ns", Name: "canary", Body: group}))
	}
	require.NoError(t, s.m.Sync(ctx))

	var a *notifier.Alert
	require.Eventually(t, func() bool { a = s.sender.find("CanaryErrors"); return a != nil }, 15*time.Second, 50*time.Millisecond)
	require.Equal(t, "acme", a.Labels.Get("org"), "the org label is the organization's, whatever the rule says")
	require.Equal(t, "page", a.Labels.Get("severity"))
	require.Equal(t, "ratio 0.2", a.Annotations.Get("summary"))
	require.Contains(t, a.Annotations.Get(AnnotationChangeEvents), "checkout-20 start at")
	require.Contains(t, a.Annotations.Get(AnnotationChangeEvents), "run: https://ci.example/1")
	require.NotContains(t, a.Annotations.Get(AnnotationChangeEvents), "billing-20")
	require.NotContains(t, a.Annotations.Get(AnnotationChangeEvents), "checkout-globex", "another organization's event")
	require.Contains(t, a.Annotations.Get(AnnotationChangeEventsJSON), `"name":"checkout-20"`)
	require.Equal(t, "http://tidemark.example/graph?g0.expr=canary_error_ratio+%3E+0.05&g0.tab=1", a.GeneratorURL)
	// globex's rule file fires with globex's label and context only.
	var g *notifier.Alert
	require.Eventually(t, func() bool { g = s.sender.find("GlobexDown"); return g != nil }, 15*time.Second, 50*time.Millisecond)
	require.Equal(t, "globex", g.Labels.Get("org"))
	require.Contains(t, g.Annotations.Get(AnnotationChangeEvents), "checkout-globex start at")
	require.NotContains(t, g.Annotations.Get(AnnotationChangeEvents), "checkout-20")

	// /api/v1/alerts through the retriever: per organization, decorated.
	rr := s.m.Retriever(storage.WithOrg(ctx, "acme"))
	require.NotNil(t, rr)
	ars := rr.AlertingRules()
	require.Len(t, ars, 1)
	active := ars[0].ActiveAlerts()
	require.Len(t, active, 1)
	require.Contains(t, active[0].Annotations.Get(AnnotationChangeEvents), "checkout-20 start at")
	require.Equal(t, "forged", active[0].Labels.Get("org"), "ALERTS and the API keep the rule's labels; only sent alerts get the org label")

	grr := s.m.Retriever(storage.WithOrg(ctx, "globex"))
	var files []string
	for _, g := range grr.RuleGroups() {
		files = append(files, g.File()+"/"+g.Name())
	}
	require.Equal(t, []string{globexFile + "/from-file", "ns/canary"}, files)
	for _, ar := range grr.AlertingRules() {
		if ar.Name() == "CanaryErrors" {
			require.Empty(t, ar.ActiveAlerts(), "globex's ratio is 0")
		}
	}
	require.Nil(t, s.m.Retriever(storage.WithOrg(ctx, "initech")))
	require.Nil(t, s.m.Retriever(ctx))

	// A rule file broken by an edit keeps its previous rules.
	require.NoError(t, os.WriteFile(globexFile, []byte("groups:\n  - name: from-file\n    rules:\n      - alert: X\n        expr: 'up =='\n"), 0o644))
	require.NoError(t, s.m.Sync(ctx))
	require.Len(t, grr.RuleGroups(), 2)
	require.Equal(t, "GlobexDown", grr.RuleGroups()[0].Rules()[0].Name())

	// A deleted namespace is unloaded.
	require.NoError(t, s.db.DeleteRuleNamespace(ctx, "globex", "ns"))
	require.NoError(t, s.m.Sync(ctx))
	require.Len(t, grr.RuleGroups(), 1)
}
