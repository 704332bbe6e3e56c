// Package alerting evaluates every organization's recording and alerting
// rules with Prometheus's rules manager, and sends their alerts, with the
// change events around them, to Alertmanagers and webhooks.
//
// Each organization has its own rules.Manager: its own TSDB as the
// Queryable and AppendableV2 (ALERTS and ALERTS_FOR_STATE land there), its
// own NotifyFunc (which adds the org label), its own metrics (label org)
// and its own restore of pending alerts after a restart. One manager for
// every organization cannot work: Prometheus evaluates all groups of a
// manager with the one context and storage of its options.
//
// Rule groups come from the ruler API (state.DB, one source per namespace)
// and from rule files named in the config (one source per file). Manager
// reads both every SyncInterval and updates an organization's manager when
// its sources changed, as Mimir's ruler polls its rule store; a change
// through the API is thus in effect within one interval (hence the API's
// 202 Accepted).
package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"

	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// RuleStore holds the rule groups of the ruler API; *state.DB implements
// it. It is safe for concurrent use.
type RuleStore interface {
	RuleGroups(ctx context.Context, q state.RuleGroupQuery) ([]state.RuleGroupRow, error)
	OrgExists(ctx context.Context, slug string) (bool, error)
}

// Options configures the Manager.
type Options struct {
	Store   RuleStore
	Backend storage.Backend
	Events  EventLister
	// Senders receive every alert to send, with the org label and the
	// change context added (see Alertmanagers and Webhooks).
	Senders []rules.Sender
	// RuleFiles are rule file paths or globs by organization.
	RuleFiles map[string][]string

	// EvaluationInterval is the interval of groups that set none.
	EvaluationInterval time.Duration
	// ResendDelay is how long a firing alert waits to be sent again.
	ResendDelay time.Duration
	// ForGracePeriod and OutageTolerance govern the restore of pending
	// alerts after a restart, as in Prometheus.
	ForGracePeriod  time.Duration
	OutageTolerance time.Duration
	// SyncInterval is how often rule groups are read again.
	SyncInterval time.Duration
	// ExternalURL is the base of the alerts' generator URLs and the
	// templates' $externalURL.
	ExternalURL string

	QueryTimeout  time.Duration
	LookbackDelta time.Duration
	MaxSamples    int

	Context ContextOptions
	// Impact, when set, tells the impact of the change events of an
	// alert's context, by which they are ranked as suspects; nil: they are
	// ranked by label overlap and time alone.
	Impact ImpactFunc

	// Engine, when set, runs the rules' queries (a remote engine's); nil:
	// Prometheus's engine over Backend.
	Engine promql.QueryEngine

	// Owns reports whether this process evaluates an organization's rules
	// (holds its lease); nil: every organization's. The others' groups are
	// loaded for the API but not evaluated.
	Owns func(org string) bool
}

// Manager runs the rules of every organization. Its methods are safe for
// concurrent use.
type Manager struct {
	logger *slog.Logger
	reg    prometheus.Registerer
	opts   Options
	engine promql.QueryEngine
	parser parser.Parser
	extURL *url.URL
	finder *contextFinder
	files  fileCache
	ctx    context.Context
	cancel context.CancelFunc

	// syncMtx orders Sync and Stop; it guards stopped and missing.
	syncMtx sync.Mutex
	stopped bool
	missing map[string]bool // organizations of rule files that do not exist, logged once

	mtx  sync.RWMutex
	orgs map[string]*orgRules

	quit     chan struct{}
	stopOnce sync.Once

	syncFailures prometheus.Counter
	notified     *prometheus.CounterVec
}

// orgRules are the rules of one organization: evaluated by a running
// rules manager where this process owns the organization, else loaded as
// idle groups that only the API shows.
type orgRules struct {
	slug   string
	loader *groupLoader
	digest string // of the sources last loaded; owned by Sync
	// mgr runs the groups (nil when not owned); done is closed when its
	// Run has returned.
	mgr  *rules.Manager
	done chan struct{}
	// idle are the groups, loaded but not evaluated, when not owned.
	idle []*rules.Group
	// metrics are the rule group metrics of every manager it has.
	metrics *rules.Metrics
}

// groups are an organization's rule groups, evaluated or idle.
func (m *Manager) groups(o *orgRules) []*rules.Group {
	m.mtx.RLock()
	mgr, idle := o.mgr, o.idle
	m.mtx.RUnlock()
	if mgr != nil {
		return mgr.RuleGroups()
	}
	return idle
}

// alertingRules are the alerting rules of an organization's groups.
func (m *Manager) alertingRules(o *orgRules) []*rules.AlertingRule {
	var out []*rules.AlertingRule
	for _, g := range m.groups(o) {
		out = append(out, g.AlertingRules()...)
	}
	return out
}

// setRunning records o's running manager (nil: none) and idle groups.
func (m *Manager) setRunning(o *orgRules, mgr *rules.Manager, done chan struct{}, idle []*rules.Group) {
	m.mtx.Lock()
	o.mgr, o.done, o.idle = mgr, done, idle
	m.mtx.Unlock()
}

// New returns a Manager. Call Run to start evaluating, Stop to end.
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) (*Manager, error) {
	if opts.EvaluationInterval <= 0 {
		opts.EvaluationInterval = time.Minute
	}
	if opts.ResendDelay <= 0 {
		opts.ResendDelay = time.Minute
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 10 * time.Second
	}
	if opts.Context.Lookback <= 0 {
		opts.Context.Lookback = 30 * time.Minute
	}
	if opts.Context.MaxEvents <= 0 {
		opts.Context.MaxEvents = 10
	}
	ext, err := url.Parse(opts.ExternalURL)
	if err != nil {
		return nil, fmt.Errorf("external URL %q: %w", opts.ExternalURL, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		logger: logger,
		reg:    reg,
		opts:   opts,
		parser: parser.NewParser(parser.Options{}),
		extURL: ext,
		finder: newContextFinder(opts.Events, opts.Context),
		ctx:    ctx,
		cancel: cancel,
		orgs:   map[string]*orgRules{},
		quit:   make(chan struct{}),
	}
	interval := opts.EvaluationInterval.Milliseconds()
	// The engine of rule evaluation. It registers no metrics: the query
	// API's engine has them under the same names.
	m.finder.impact = opts.Impact
	m.engine = opts.Engine
	if m.engine == nil {
		m.engine = promql.NewEngine(promql.EngineOpts{
			Logger:                   logger.With("component", "rule query engine"),
			MaxSamples:               opts.MaxSamples,
			Timeout:                  opts.QueryTimeout,
			LookbackDelta:            opts.LookbackDelta,
			EnableAtModifier:         true,
			EnableNegativeOffset:     true,
			NoStepSubqueryIntervalFn: func(int64) int64 { return interval },
			Parser:                   m.parser,
		})
	}
	f := promauto.With(reg)
	m.syncFailures = f.NewCounter(prometheus.CounterOpts{
		Name: "tidemark_rule_sync_failures_total",
		Help: "Reads of the rule groups (state database and rule files) that failed.",
	})
	m.notified = f.NewCounterVec(prometheus.CounterOpts{
		Name: "tidemark_alerts_notified_total",
		Help: "Alerts handed to the Alertmanagers and webhooks, by organization.",
	}, []string{"org"})
	return m, nil
}

// Run reads the rule groups at once and every SyncInterval until Stop.
func (m *Manager) Run() {
	if err := m.Sync(m.ctx); err != nil {
		m.logger.Error("load rule groups", "err", err)
	}
	t := time.NewTicker(m.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-t.C:
			if err := m.Sync(m.ctx); err != nil {
				m.logger.Error("load rule groups", "err", err)
			}
		}
	}
}

// Stop ends Run and every organization's evaluation, waiting for
// evaluations in progress (and the alerts they send) to finish.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() { close(m.quit) })
	m.syncMtx.Lock()
	defer m.syncMtx.Unlock()
	if m.stopped {
		return
	}
	m.stopped = true
	m.mtx.RLock()
	orgs := make([]*orgRules, 0, len(m.orgs))
	for _, o := range m.orgs {
		orgs = append(orgs, o)
	}
	m.mtx.RUnlock()
	var wg sync.WaitGroup
	for _, o := range orgs {
		if o.mgr == nil {
			continue
		}
		wg.Go(func() {
			o.mgr.Stop()
			<-o.done
		})
	}
	wg.Wait()
	m.cancel()
}

// Sync reads the rule groups of every organization and loads those that
// changed. Run calls it every SyncInterval; tests call it directly.
func (m *Manager) Sync(ctx context.Context) error {
	m.syncMtx.Lock()
	defer m.syncMtx.Unlock()
	return m.syncLocked(ctx, "")
}

// syncLocked syncs every organization, or only the one named.
func (m *Manager) syncLocked(ctx context.Context, only string) error {
	if m.stopped {
		return nil
	}
	q := state.RuleGroupQuery{Org: only}
	rows, err := m.opts.Store.RuleGroups(ctx, q)
	if err != nil {
		m.syncFailures.Inc()
		return fmt.Errorf("read rule groups: %w", err)
	}
	byOrg := map[string][]state.RuleGroupRow{}
	for _, r := range rows {
		byOrg[r.Org] = append(byOrg[r.Org], r)
	}
	orgSet := map[string]bool{}
	for org := range byOrg {
		orgSet[org] = true
	}
	for org := range m.opts.RuleFiles {
		orgSet[org] = true
	}
	m.mtx.RLock()
	for org := range m.orgs {
		orgSet[org] = true
	}
	m.mtx.RUnlock()
	slugs := make([]string, 0, len(orgSet))
	for org := range orgSet {
		if only == "" || org == only {
			slugs = append(slugs, org)
		}
	}
	sort.Strings(slugs)

	var errs []error
	for _, org := range slugs {
		if err := m.syncOrg(ctx, org, byOrg[org]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		m.syncFailures.Inc()
	}
	return errors.Join(errs...)
}

// owns reports whether this process evaluates org's rules.
func (m *Manager) owns(org string) bool {
	return m.opts.Owns == nil || m.opts.Owns(org)
}

// StartOrg implements lease.Worker: org's rules are evaluated here from
// now on.
func (m *Manager) StartOrg(org string) {
	m.syncMtx.Lock()
	defer m.syncMtx.Unlock()
	if m.stopped {
		return
	}
	if err := m.syncLocked(m.ctx, org); err != nil {
		m.logger.Error("load rule groups", "org", org, "err", err)
	}
}

// StopOrg implements lease.Worker: org's rules stop being evaluated here
// before it returns (evaluations in progress finish, and the alerts they
// queued are handed to the senders).
func (m *Manager) StopOrg(org string) {
	m.syncMtx.Lock()
	defer m.syncMtx.Unlock()
	if m.stopped {
		return
	}
	o := m.org(org)
	if o == nil || o.mgr == nil {
		return
	}
	o.mgr.Stop()
	<-o.done
	m.setRunning(o, nil, nil, nil)
	o.digest = ""
	// Its groups stay visible, idle.
	if err := m.syncLocked(m.ctx, org); err != nil {
		m.logger.Error("load rule groups", "org", org, "err", err)
	}
}

func (m *Manager) syncOrg(ctx context.Context, org string, rows []state.RuleGroupRow) error {
	logger := m.logger.With("org", org)
	srcs := m.files.fileSources(logger, m.parser, org, m.opts.RuleFiles[org])
	isFile := map[string]bool{}
	for _, s := range srcs {
		isFile[s.id] = true
	}
	for _, s := range namespaceSources(logger, m.parser, rows) {
		if isFile[s.id] {
			logger.Error("rule namespace has the name of a rule file; skipped", "namespace", s.id)
			continue
		}
		srcs = append(srcs, s)
	}

	m.mtx.RLock()
	o := m.orgs[org]
	m.mtx.RUnlock()
	if o == nil {
		if len(srcs) == 0 {
			return nil
		}
		if len(rows) == 0 {
			// Only rule files name this organization: it must exist.
			ok, err := m.opts.Store.OrgExists(ctx, org)
			if err != nil {
				return fmt.Errorf("check organization %q: %w", org, err)
			}
			if !ok {
				if m.missing == nil {
					m.missing = map[string]bool{}
				}
				if !m.missing[org] {
					logger.Error("rule files name an organization that does not exist; create it with 'tidemark org create'")
					m.missing[org] = true
				}
				return nil
			}
		}
		var err error
		if o, err = m.newOrg(org); err != nil {
			return err
		}
	}
	owned := m.owns(org)
	digest := digestOf(srcs)
	if digest == o.digest && owned == (o.mgr != nil) {
		return nil
	}
	o.loader.set(srcs)
	ids := make([]string, 0, len(srcs))
	groups := 0
	for _, s := range srcs {
		ids = append(ids, s.id)
		groups += len(s.groups.Groups)
	}
	extLabels := labels.FromStrings("org", org)
	if !owned {
		if o.mgr != nil {
			// The lease went elsewhere between two syncs.
			o.mgr.Stop()
			<-o.done
		}
		// Loaded by a manager that never runs, with metrics of their own:
		// the groups' series are the evaluating process's.
		loader, err := m.newRulesManager(org, o.loader, rules.NewGroupMetrics(nil))
		if err != nil {
			return err
		}
		loaded, errs := loader.LoadGroups(m.opts.EvaluationInterval, extLabels, m.extURL.String(), nil, false, ids...)
		if len(errs) > 0 {
			return fmt.Errorf("load rule groups of organization %q: %w", org, errors.Join(errs...))
		}
		idle := make([]*rules.Group, 0, len(loaded))
		for _, g := range loaded {
			idle = append(idle, g)
		}
		sort.Slice(idle, func(i, j int) bool { return idle[i].File()+idle[i].Name() < idle[j].File()+idle[j].Name() })
		m.setRunning(o, nil, nil, idle)
		o.digest = digest
		logger.Info("rule groups loaded; another process evaluates them", "sources", len(srcs), "groups", groups)
		return nil
	}
	if o.mgr == nil {
		mgr, err := m.newRulesManager(org, o.loader, o.metrics)
		if err != nil {
			return err
		}
		done := make(chan struct{})
		go func() {
			mgr.Run()
			close(done)
		}()
		m.setRunning(o, mgr, done, nil)
	}
	if err := o.mgr.Update(m.opts.EvaluationInterval, ids, extLabels, m.extURL.String(), nil); err != nil {
		return fmt.Errorf("load rule groups of organization %q: %w", org, err)
	}
	o.digest = digest
	logger.Info("rule groups loaded", "sources", len(srcs), "groups", groups)
	return nil
}

// newOrg adds an organization, with no rules manager yet.
func (m *Manager) newOrg(slug string) (*orgRules, error) {
	var reg prometheus.Registerer
	if m.reg != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"org": slug}, m.reg)
	}
	o := &orgRules{slug: slug, loader: &groupLoader{parser: m.parser}, metrics: rules.NewGroupMetrics(reg)}
	m.mtx.Lock()
	m.orgs[slug] = o
	m.mtx.Unlock()
	return o, nil
}

// newRulesManager is a Prometheus rules manager for an organization: its
// own storage, notifications with its label, metrics and restore of
// pending alerts.
func (m *Manager) newRulesManager(slug string, loader *groupLoader, metrics *rules.Metrics) (*rules.Manager, error) {
	st, err := m.opts.Backend.Org(slug)
	if err != nil {
		return nil, fmt.Errorf("open storage of organization %q: %w", slug, err)
	}
	return rules.NewManager(&rules.ManagerOptions{
		ExternalURL:     m.extURL,
		QueryFunc:       rules.EngineQueryFunc(m.engine, st),
		NotifyFunc:      m.notifyFunc(slug),
		Context:         storage.WithOrg(m.ctx, slug),
		AppendableV2:    st,
		Queryable:       st,
		Logger:          m.logger.With("org", slug),
		Metrics:         metrics,
		OutageTolerance: m.opts.OutageTolerance,
		ForGracePeriod:  m.opts.ForGracePeriod,
		ResendDelay:     m.opts.ResendDelay,
		GroupLoader:     loader,
		Parser:          m.parser,
	}), nil
}

func (m *Manager) org(slug string) *orgRules {
	m.mtx.RLock()
	defer m.mtx.RUnlock()
	return m.orgs[slug]
}
