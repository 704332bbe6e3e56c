package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/grafana/regexp"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	toolkitweb "github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"

	"github.com/tidemark/tidemark/alerting"
	"github.com/tidemark/tidemark/config"
	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/impact"
	"github.com/tidemark/tidemark/lease"
	"github.com/tidemark/tidemark/query"
	"github.com/tidemark/tidemark/shifts"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
	"github.com/tidemark/tidemark/storage/metadata"
	"github.com/tidemark/tidemark/storage/remote"
	"github.com/tidemark/tidemark/web"
)

// The files of the data directory besides the TSDBs.
const (
	StateFile          = "state.db"
	BootstrapTokenFile = "bootstrap-token"
)

// Server is a built server. Run runs it once.
type Server struct {
	logger *slog.Logger
	opts   Options

	db       *state.DB
	leases   *lease.Manager
	backend  storage.Backend
	events   *events.Service
	impact   *impact.Service
	rules    *alerting.Manager
	shifts   *shifts.Detector
	senders  []alertSender
	handler  *web.Handler
	listener net.Listener
	ready    chan struct{}
}

// New builds a server: it opens the state database (creating organization
// "default" and its admin token on a first start), prepares the storage,
// the leases, the event writer, the rules of every organization, impact
// scoring, the traffic-shift detector and the HTTP API, and listens.
// Nothing is served until Run. reg receives every metric.
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) (_ *Server, err error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	alertCfg := config.DefaultAlerting()
	if opts.Config != nil {
		alertCfg = opts.Config.Alerting
	}
	if err := alerting.CheckRuleFiles(alertCfg.RuleFiles); err != nil {
		return nil, err
	}
	if opts.Config != nil {
		if err := opts.Config.CheckTrafficShiftLookback(opts.Events.Limits.Backfill); err != nil {
			return nil, err
		}
	}
	var cors *regexp.Regexp
	if opts.CORSOrigin != "" {
		if cors, err = regexp.Compile("^(?:" + opts.CORSOrigin + ")$"); err != nil {
			return nil, fmt.Errorf("--web.cors.origin %q: %w", opts.CORSOrigin, err)
		}
	}

	if opts.WebConfigFile != "" {
		if err := toolkitweb.Validate(opts.WebConfigFile); err != nil {
			return nil, fmt.Errorf("--web.config.file %s: %w", opts.WebConfigFile, err)
		}
	}

	s := &Server{logger: logger, opts: opts, ready: make(chan struct{})}
	// What New opened is closed again if it fails.
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	ctx := context.Background()
	if err := os.MkdirAll(opts.StoragePath, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if s.db, err = state.OpenURL(ctx, opts.StateURL, filepath.Join(opts.StoragePath, StateFile)); err != nil {
		return nil, err
	}
	if opts.Config != nil {
		orgs, toks := opts.Config.StateTokens()
		if err := s.db.SyncConfig(ctx, orgs, toks); err != nil {
			return nil, err
		}
	}
	if err := bootstrap(ctx, logger, s.db, opts.StoragePath); err != nil {
		return nil, err
	}

	var inner storage.Backend
	var rb *remote.Backend
	switch opts.Storage {
	case StorageRemote:
		ro := opts.Remote
		tenants := map[string]string{}
		if opts.Config != nil {
			tenants = opts.Config.Tenants()
		}
		ro.Tenant = func(org string) string {
			if t, ok := tenants[org]; ok {
				return t
			}
			return org
		}
		if rb, err = remote.New(logger.With("component", "remote storage"), reg, ro); err != nil {
			return nil, err
		}
		inner = rb
	default:
		inner = storage.NewEmbedded(logger.With("component", "storage"), reg, storage.EmbeddedOptions{
			Dir:              filepath.Join(opts.StoragePath, "tsdb"),
			Retention:        opts.Retention,
			OutOfOrderWindow: max(opts.OutOfOrderWindow, opts.Events.Limits.Backfill),
			MaxExemplars:     opts.MaxExemplars,
			WALCompression:   opts.WALCompression,
		})
	}
	if opts.WrapStorage != nil {
		inner = opts.WrapStorage(inner)
	}
	rejections := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "tidemark_limit_rejections_total",
		Help: "Requests or samples refused by a limit, by limit.",
	}, []string{"limit"})
	// Every writer appends through query.WatchAppends: the results cache
	// hears of each append, so no append leaves a stale result behind.
	s.backend = query.WatchAppends(storage.NewLimited(inner, storage.LimitOptions{
		MaxSeriesPerOrg: opts.MaxSeriesPerOrg,
		Rejected:        rejections.WithLabelValues("max_series_per_org"),
	}))
	// Once-per-organization work (active series, replays, rules) is done
	// where the organization's lease is held: here, with one process per
	// database.
	s.leases = lease.New(logger.With("component", "leases"), reg, s.db, lease.Options{
		Holder: leaseHolder(s.db),
		TTL:    opts.LeaseTTL,
		Renew:  opts.LeaseRenew,
		Orgs:   s.db.Orgs,
	})
	evOpts := opts.Events
	evOpts.Owner = s.leases
	if s.db.Dialect() != "sqlite" {
		// Another replica's write may be in flight for this long.
		evOpts.ReplayGrace = time.Minute
	}
	evOpts.Impacts = s.db
	s.events = events.NewService(logger.With("component", "events"), reg, s.db, s.backend, evOpts)

	if s.senders, err = alertSenders(logger, reg, alertCfg); err != nil {
		return nil, err
	}
	ruleSenders := make([]rules.Sender, 0, len(s.senders)+len(opts.AlertSenders))
	for _, snd := range s.senders {
		ruleSenders = append(ruleSenders, snd)
	}
	ruleSenders = append(ruleSenders, opts.AlertSenders...)
	var engine promql.QueryEngine
	if rb != nil {
		engine = rb.QueryEngine()
	}
	s.impact = newImpact(logger, reg, opts, s.db, s.backend, engine)
	s.leases.AddWorker(s.impact)
	s.rules, err = alerting.New(logger.With("component", "rules"), reg, alerting.Options{
		Engine:             engine,
		Store:              s.db,
		Backend:            s.backend,
		Events:             s.events,
		Senders:            ruleSenders,
		RuleFiles:          alertCfg.RuleFiles,
		EvaluationInterval: time.Duration(alertCfg.EvaluationInterval),
		ResendDelay:        time.Duration(alertCfg.ResendDelay),
		ForGracePeriod:     time.Duration(alertCfg.ForGracePeriod),
		OutageTolerance:    time.Duration(alertCfg.OutageTolerance),
		SyncInterval:       time.Duration(alertCfg.SyncInterval),
		ExternalURL:        externalURL(alertCfg.ExternalURL, opts.ListenAddress),
		QueryTimeout:       opts.QueryTimeout,
		LookbackDelta:      opts.LookbackDelta,
		MaxSamples:         opts.MaxSamples,
		Context: alerting.ContextOptions{
			Lookback:    time.Duration(alertCfg.ChangeContext.Lookback),
			MatchLabels: alertCfg.ChangeContext.MatchLabels,
			MaxEvents:   alertCfg.ChangeContext.MaxEvents,
		},
		Impact: s.impact.ImpactOf,
		Owns:   s.leases.Holds,
	})
	if err != nil {
		return nil, err
	}
	s.leases.AddWorker(s.rules)
	s.shifts = newTrafficShifts(logger, reg, opts, engine, s.backend, s.events)
	s.leases.AddWorker(s.shifts)
	gatherer, _ := reg.(prometheus.Gatherer)
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	webOpts := web.Options{
		Version:                opts.Version,
		MaxRequestBytes:        opts.MaxRequestBytes,
		QueryTimeout:           opts.QueryTimeout,
		LookbackDelta:          opts.LookbackDelta,
		MaxSamples:             opts.MaxSamples,
		Query:                  opts.Query,
		CORSOrigin:             cors,
		TokenRequestsPerSecond: opts.TokenRequestsPerSecond,
		TokenBurst:             opts.TokenBurst,
		TokenLimitRejected:     rejections.WithLabelValues("token_requests_per_second"),
		Pprof:                  opts.Pprof,
		State:                  s.db,
		Backend:                s.backend,
		Events:                 s.events,
		Impact:                 s.impact,
		Rules:                  s.rules.Retriever,
		Gatherer:               gatherer,
		Flags:                  opts.Flags,
		Retention:              opts.Retention,
		Metadata:               metadata.New(opts.MaxMetadataFamilies),
	}
	switch {
	case opts.Hooks != nil:
		webOpts.Hooks = opts.Hooks
	case opts.Config != nil:
		webOpts.Hooks = opts.Config.HookSettings
	}
	if rb != nil {
		webOpts.Remote, webOpts.QueryEngine = rb, engine
	}
	s.handler = web.New(logger.With("component", "web"), reg, webOpts)

	s.listener = opts.Listener
	if s.listener == nil {
		if s.listener, err = net.Listen("tcp", opts.ListenAddress); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", opts.ListenAddress, err)
		}
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Handler is the HTTP API, for callers that serve it themselves.
func (s *Server) Handler() http.Handler { return s.handler }

// Ready is closed once the server is ready: every organization's storage
// is open and the event log recovered.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// State is the state database.
func (s *Server) State() *state.DB { return s.db }

// Events is the change-event service.
func (s *Server) Events() *events.Service { return s.events }

// Rules is the rules manager of every organization.
func (s *Server) Rules() *alerting.Manager { return s.rules }

// Run serves until ctx is done or a component fails, then stops in order:
// the HTTP server drains its requests, the traffic-shift detector finishes
// its runs, the event writer finishes what was queued, the rules finish
// their evaluations, the alerts queued are sent, and the storage and state
// are closed. It returns the error that stopped
// it, nil for ctx.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	logger := s.logger
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 30 * time.Second}
	httpDone := make(chan struct{})
	recovered := make(chan struct{})
	rulesDone := make(chan struct{})

	var g run.Group
	{
		// The caller's context: its end stops everything.
		cancel := make(chan struct{})
		g.Add(func() error {
			select {
			case <-ctx.Done():
			case <-cancel:
			}
			return nil
		}, func(error) { close(cancel) })
	}
	{
		// The HTTP server: it listens at once, so /-/healthy answers while
		// the rest starts; other routes answer 503 until ready.
		g.Add(func() error {
			logger.Info("listening", "address", s.listener.Addr().String(), "storage", s.opts.StoragePath)
			webConfig := s.opts.WebConfigFile
			if err := toolkitweb.Serve(s.listener, srv, &toolkitweb.FlagConfig{WebConfigFile: &webConfig}, logger.With("component", "web config")); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}, func(error) {
			sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				logger.Warn("in-flight requests did not finish before the shutdown timeout", "err", err)
			}
			close(httpDone)
		})
	}
	// The traffic-shift detector: it stops before the event writer, so
	// that its last writes are done.
	addWorker(&g, recovered, httpDone, s.shifts.Run, s.shifts.Stop, nil)
	{
		// The event writer: recovery first, then readiness, then the
		// loop. It stops after the HTTP server has drained, so in-flight
		// event writes finish.
		stop := make(chan struct{})
		g.Add(func() error {
			// Ready means queryable: replay every organization's WAL first.
			if err := s.backend.Open(ctx); err != nil {
				return err
			}
			// Take the organizations' leases, so that recovery writes the
			// series of those this process owns.
			s.leases.Renew(ctx)
			if err := s.events.Recover(ctx); err != nil {
				return fmt.Errorf("recover change events: %w", err)
			}
			close(recovered)
			select {
			case <-stop:
				return nil
			default:
			}
			s.handler.SetReady()
			close(s.ready)
			logger.Info("ready")
			s.events.Run()
			return nil
		}, func(error) {
			<-httpDone
			close(stop)
			s.events.Stop()
		})
	}
	// The rules of every organization, and impact scoring.
	addWorker(&g, recovered, httpDone, s.rules.Run, s.rules.Stop, rulesDone)
	impactDone := make(chan struct{})
	addWorker(&g, recovered, httpDone, s.impact.Run, s.impact.Stop, impactDone)
	{
		// The leases: renewed until the rules and the scoring have
		// stopped, then given up, so that another process takes the
		// organizations at once.
		lctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		g.Add(func() error {
			select {
			case <-recovered:
			case <-lctx.Done():
				close(done)
				return nil
			}
			s.leases.Run(lctx)
			close(done)
			return nil
		}, func(error) {
			<-rulesDone
			<-impactDone
			cancel()
			<-done
		})
	}
	for _, snd := range s.senders {
		// Alertmanagers and webhooks: they deliver what the last
		// evaluations queued, then stop.
		g.Add(func() error {
			snd.Run()
			return nil
		}, func(error) {
			<-rulesDone
			snd.Stop()
		})
	}
	return g.Run()
}

// addWorker adds to g a component that runs from recovery on and, when the
// group stops, is stopped once the HTTP server has drained; done, when not
// nil, is closed after it has stopped.
func addWorker(g *run.Group, recovered, httpDone <-chan struct{}, run, stop func(), done chan struct{}) {
	quit := make(chan struct{})
	g.Add(func() error {
		select {
		case <-recovered:
		case <-quit:
			return nil
		}
		run()
		return nil
	}, func(error) {
		<-httpDone
		close(quit)
		stop()
		if done != nil {
			close(done)
		}
	})
}

// close closes the storage and the state, once.
func (s *Server) close() {
	if s.backend != nil {
		if err := s.backend.Close(); err != nil {
			s.logger.Error("close storage", "err", err)
		}
		s.backend = nil
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.logger.Error("close state database", "err", err)
		}
		s.db = nil
	}
}

// newTrafficShifts is the traffic-shift detector of the organizations
// whose config has one. Its queries go where the judge's do: to the remote
// engine (engine), or to Prometheus's engine over the organization's TSDB.
func newTrafficShifts(logger *slog.Logger, reg prometheus.Registerer, opts Options, engine promql.QueryEngine, backend storage.Backend, evs *events.Service) *shifts.Detector {
	if engine == nil {
		// It registers no metrics: the query API's engine has them
		// under the same names.
		engine = promql.NewEngine(promql.EngineOpts{
			Logger:                   logger.With("component", "traffic shift query engine"),
			MaxSamples:               opts.MaxSamples,
			Timeout:                  opts.QueryTimeout,
			LookbackDelta:            opts.LookbackDelta,
			EnableAtModifier:         true,
			EnableNegativeOffset:     true,
			NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		})
	}
	settings := func(string) (shifts.Settings, bool) { return shifts.Settings{}, false }
	if opts.Config != nil {
		settings = opts.Config.TrafficShiftSettings
	}
	return shifts.New(logger.With("component", "traffic shifts"), reg, shifts.Options{
		Settings:  settings,
		Engine:    engine,
		Queryable: storage.Routed{Backend: backend},
		Events:    evs,
	})
}

// leaseHolder names this process in the leases. With SQLite one process
// owns the database (its TSDBs are locked), so a restart keeps its leases;
// with PostgreSQL every process is a new holder.
func leaseHolder(db *state.DB) string {
	if db.Dialect() == "sqlite" {
		return "embedded"
	}
	host, err := os.Hostname()
	if err != nil {
		host = "tidemark"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// alertSender is where alerts go: Alertmanagers or webhooks.
type alertSender interface {
	rules.Sender
	Run()
	Stop()
}

func alertSenders(logger *slog.Logger, reg prometheus.Registerer, cfg config.Alerting) ([]alertSender, error) {
	var out []alertSender
	if len(cfg.AlertmanagerURLs) > 0 {
		ams, err := alerting.NewAlertmanagers(logger.With("component", "notifier"), reg, alerting.AlertmanagerOptions{URLs: cfg.AlertmanagerURLs})
		if err != nil {
			return nil, err
		}
		out = append(out, ams)
	}
	if len(cfg.WebhookURLs) > 0 {
		hooks, err := alerting.NewWebhooks(logger.With("component", "webhooks"), reg, alerting.WebhookOptions{URLs: cfg.WebhookURLs})
		if err != nil {
			return nil, err
		}
		out = append(out, hooks)
	}
	return out, nil
}

// externalURL is the configured external URL, or http://<hostname>:<port>
// as Prometheus's default.
func externalURL(configured, listen string) string {
	if configured != "" {
		return strings.TrimSuffix(configured, "/")
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		port = "9470"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// bootstrap creates organization "default" and an admin token on a first
// start with no organizations, and writes the token to a file only the
// server's user can read.
func bootstrap(ctx context.Context, logger *slog.Logger, db state.Store, dir string) error {
	orgs, err := db.Orgs(ctx)
	if err != nil {
		return err
	}
	if len(orgs) > 0 {
		return nil
	}
	if err := db.CreateOrg(ctx, "default"); errors.Is(err, state.ErrExists) {
		// Another replica on the same database started first.
		return nil
	} else if err != nil {
		return err
	}
	token := state.NewToken()
	path := filepath.Join(dir, BootstrapTokenFile)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write bootstrap token: %w", err)
	}
	if err := db.AddToken(ctx, "default", state.ScopeAdmin, "bootstrap", state.SourceBootstrap, token); err != nil {
		return err
	}
	logger.Info("first start: created organization default and an admin token", "org", "default", "token_file", path)
	return nil
}
