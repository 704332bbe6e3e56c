package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/grafana/regexp"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/prometheus/rules"

	"github.com/tidemark/tidemark/alerting"
	"github.com/tidemark/tidemark/config"
	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/query"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
	"github.com/tidemark/tidemark/web"
)

const (
	stateFile          = "state.db"
	bootstrapTokenFile = "bootstrap-token"
)

type serveCmd struct {
	cmd *kingpin.CmdClause

	listenAddress   string
	storagePath     string
	retention       time.Duration
	oooWindow       time.Duration
	configFile      string
	maxRequestBytes units.Base2Bytes
	queryTimeout    time.Duration
	lookbackDelta   time.Duration
	maxSamples      int
	query           web.QueryOptions
	queryCacheBytes units.Base2Bytes
	shutdownTimeout time.Duration
	corsOrigin      string
	maxSeries       uint64
	tokenRPS        float64
	tokenBurst      int
	logLevel        string
	logFormat       string

	eventsMaxBatch     int
	eventsMetricName   string
	eventsCompatNames  string
	eventsResolution   time.Duration
	eventsMaxDuration  time.Duration
	eventsBackfill     time.Duration
	eventsFutureWindow time.Duration
}

func newServeCmd(app *kingpin.Application) *serveCmd {
	c := &serveCmd{}
	c.cmd = app.Command("serve", "Run the server.").Default()
	f := c.cmd.Flag
	f("web.listen-address", "Address to listen on for the API.").Default(":9470").StringVar(&c.listenAddress)
	f("web.max-request-bytes", "Largest request body accepted (413 beyond it).").Default("32MiB").BytesVar(&c.maxRequestBytes)
	durationFlag(f("web.shutdown-timeout", "How long a shutdown waits for in-flight requests.").Default("30s"), &c.shutdownTimeout)
	f("web.cors.origin", `Regexp of the Origins whose browsers may call the Prometheus API (e.g. 'https?://grafana\.example\.com'); empty: CORS off.`).Default("").StringVar(&c.corsOrigin)
	f("limits.max-series-per-org", "Most active series an organization may have; writes that would create more are refused (400). 0: no limit.").Default("2000000").Uint64Var(&c.maxSeries)
	f("limits.token-requests-per-second", "Requests per second each token may send; more are refused with 429 and Retry-After. 0: no limit.").Default("500").Float64Var(&c.tokenRPS)
	f("limits.token-burst", "Requests a token may send at once above its rate.").Default("1000").IntVar(&c.tokenBurst)
	f("storage.path", "Data directory: the state database and one TSDB per organization.").Default("./data").StringVar(&c.storagePath)
	durationFlag(f("storage.retention", "How long samples are kept.").Default("15d"), &c.retention)
	durationFlag(f("storage.out-of-order-window", "How far behind a series' newest sample a sample may still be appended; at least --events.backfill-window.").Default("0s"), &c.oooWindow)
	f("config.file", "Optional YAML configuration file (organizations, tokens, alerting).").StringVar(&c.configFile)
	durationFlag(f("query.timeout", "Maximum time a query may take.").Default("2m"), &c.queryTimeout)
	durationFlag(f("query.lookback-delta", "How far back PromQL looks for a sample.").Default("5m"), &c.lookbackDelta)
	f("query.max-samples", "Most samples a query may load into memory.").Default("50000000").IntVar(&c.maxSamples)
	f("query.parallelism", "Sub-queries of one query evaluated at once (range queries split by time); 0: one per CPU, 1: no splitting.").Default("0").IntVar(&c.query.Parallelism)
	f("query.shards", "Series shards that sum, min, max, count and group are evaluated in; 0 or 1: no sharding.").Default("0").IntVar(&c.query.Shards)
	f("query.results-cache.max-bytes", "Memory for cached range query results, invalidated by appends; 0: no cache.").Default("128MiB").BytesVar(&c.queryCacheBytes)
	f("log.level", "Log level: debug, info, warn, error.").Default("info").EnumVar(&c.logLevel, "debug", "info", "warn", "error")
	f("log.format", "Log format: logfmt or json.").Default("logfmt").EnumVar(&c.logFormat, "logfmt", "json")

	f("events.max-batch", "Most change events in one request.").Default("1000").IntVar(&c.eventsMaxBatch)
	f("events.metric-name", "Name of the point series of change events.").Default(events.DefaultMetricName).StringVar(&c.eventsMetricName)
	f("events.compat-metric-names", "Comma-separated further names for the point series, e.g. last9_change_events,last9_domain_events.").Default("").StringVar(&c.eventsCompatNames)
	durationFlag(f("events.active-resolution", "Step of the change_event_active samples.").Default("15s"), &c.eventsResolution)
	durationFlag(f("events.max-duration", "An open event's active series ends after this long without a stop.").Default("24h"), &c.eventsMaxDuration)
	durationFlag(f("events.backfill-window", "How old an event may be; older ones are refused.").Default("7d"), &c.eventsBackfill)
	durationFlag(f("events.future-window", "How far in the future an event may be (clock skew).").Default("10m"), &c.eventsFutureWindow)
	return c
}

func (c *serveCmd) queryOptions() web.QueryOptions {
	o := c.query
	o.ResultsCacheMaxBytes = int64(c.queryCacheBytes)
	return o
}

func (c *serveCmd) logger() *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.logLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func (c *serveCmd) eventOptions() (events.Options, error) {
	var compat []string
	for _, n := range strings.Split(c.eventsCompatNames, ",") {
		if n = strings.TrimSpace(n); n != "" {
			compat = append(compat, n)
		}
	}
	for _, n := range append([]string{c.eventsMetricName}, compat...) {
		if !metricNameOK(n) {
			return events.Options{}, fmt.Errorf("metric name %q is not accepted: use [a-zA-Z_:][a-zA-Z0-9_:]*", n)
		}
	}
	if c.eventsMaxBatch < 1 {
		return events.Options{}, fmt.Errorf("--events.max-batch %d is not accepted: use 1 or more", c.eventsMaxBatch)
	}
	if c.eventsResolution < time.Second {
		return events.Options{}, fmt.Errorf("--events.active-resolution %s is not accepted: use 1s or more", c.eventsResolution)
	}
	lim := events.DefaultLimits
	lim.MaxBatch = c.eventsMaxBatch
	lim.Backfill = c.eventsBackfill
	lim.Future = c.eventsFutureWindow
	return events.Options{
		MetricName:        c.eventsMetricName,
		CompatMetricNames: compat,
		ActiveResolution:  c.eventsResolution,
		MaxDuration:       c.eventsMaxDuration,
		Limits:            lim,
	}, nil
}

func metricNameOK(n string) bool {
	if n == "" {
		return false
	}
	for i, r := range n {
		ok := r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func (c *serveCmd) run() int {
	logger := c.logger()
	if err := c.serve(logger); err != nil {
		logger.Error("tidemark stopped", "err", err)
		return 1
	}
	return 0
}

func (c *serveCmd) serve(logger *slog.Logger) error {
	evOpts, err := c.eventOptions()
	if err != nil {
		return err
	}
	var cfg *config.Config
	if c.configFile != "" {
		if cfg, err = config.Load(c.configFile); err != nil {
			return err
		}
	}
	alertCfg := config.DefaultAlerting()
	if cfg != nil {
		alertCfg = cfg.Alerting
	}
	if err := alerting.CheckRuleFiles(alertCfg.RuleFiles); err != nil {
		return err
	}
	if err := os.MkdirAll(c.storagePath, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	db, err := state.Open(filepath.Join(c.storagePath, stateFile))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if cfg != nil {
		orgs, toks := cfg.StateTokens()
		if err := db.SyncConfig(ctx, orgs, toks); err != nil {
			return err
		}
	}
	if err := bootstrap(ctx, logger, db, c.storagePath); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("tidemark"),
	)
	ooo := max(c.oooWindow, c.eventsBackfill)
	embedded := storage.NewEmbedded(logger.With("component", "storage"), reg, storage.EmbeddedOptions{
		Dir:              filepath.Join(c.storagePath, "tsdb"),
		Retention:        c.retention,
		OutOfOrderWindow: ooo,
	})
	// Every writer appends through query.WatchAppends: the results cache hears of each append.
	backend := query.WatchAppends(storage.NewLimited(embedded, reg, storage.LimitOptions{MaxSeriesPerOrg: c.maxSeries}))
	defer func() {
		if err := backend.Close(); err != nil {
			logger.Error("close storage", "err", err)
		}
	}()
	var cors *regexp.Regexp
	if c.corsOrigin != "" {
		if cors, err = regexp.Compile("^(?:" + c.corsOrigin + ")$"); err != nil {
			return fmt.Errorf("--web.cors.origin %q: %w", c.corsOrigin, err)
		}
	}
	evs := events.NewService(logger.With("component", "events"), reg, db, backend, evOpts)
	senders, err := alertSenders(logger, reg, alertCfg)
	if err != nil {
		return err
	}
	ruleSenders := make([]rules.Sender, 0, len(senders))
	for _, s := range senders {
		ruleSenders = append(ruleSenders, s)
	}
	ruleMgr, err := alerting.New(logger.With("component", "rules"), reg, alerting.Options{
		Store:              db,
		Backend:            backend,
		Events:             evs,
		Senders:            ruleSenders,
		RuleFiles:          alertCfg.RuleFiles,
		EvaluationInterval: time.Duration(alertCfg.EvaluationInterval),
		ResendDelay:        time.Duration(alertCfg.ResendDelay),
		ForGracePeriod:     time.Duration(alertCfg.ForGracePeriod),
		OutageTolerance:    time.Duration(alertCfg.OutageTolerance),
		SyncInterval:       time.Duration(alertCfg.SyncInterval),
		ExternalURL:        externalURL(alertCfg.ExternalURL, c.listenAddress),
		QueryTimeout:       c.queryTimeout,
		LookbackDelta:      c.lookbackDelta,
		MaxSamples:         c.maxSamples,
		Context: alerting.ContextOptions{
			Lookback:    time.Duration(alertCfg.ChangeContext.Lookback),
			MatchLabels: alertCfg.ChangeContext.MatchLabels,
			MaxEvents:   alertCfg.ChangeContext.MaxEvents,
		},
	})
	if err != nil {
		return err
	}
	handler := web.New(logger.With("component", "web"), reg, web.Options{
		Version:                version,
		MaxRequestBytes:        int64(c.maxRequestBytes),
		QueryTimeout:           c.queryTimeout,
		LookbackDelta:          c.lookbackDelta,
		MaxSamples:             c.maxSamples,
		CORSOrigin:             cors,
		TokenRequestsPerSecond: c.tokenRPS,
		TokenBurst:             c.tokenBurst,
		Query:                  c.queryOptions(),
		State:                  db,
		Backend:                backend,
		Events:                 evs,
		Rules:                  ruleMgr.Retriever,
		Gatherer:               reg,
	})

	ln, err := net.Listen("tcp", c.listenAddress)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.listenAddress, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	httpDone := make(chan struct{})
	recovered := make(chan struct{})
	rulesDone := make(chan struct{})

	var g run.Group
	addSignalActor(&g, logger)
	{
		// The HTTP server: it listens at once, so /-/healthy answers while
		// the rest starts; other routes answer 503 until ready.
		g.Add(func() error {
			logger.Info("listening", "address", ln.Addr().String(), "storage", c.storagePath)
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}, func(error) {
			ctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				logger.Warn("in-flight requests did not finish before the shutdown timeout", "err", err)
			}
			close(httpDone)
		})
	}
	{
		// The event writer: recovery first, then readiness, then the
		// loop. It stops after the HTTP server has drained, so in-flight
		// event writes finish.
		stop := make(chan struct{})
		g.Add(func() error {
			// Ready means queryable: replay every organization's WAL first.
			if err := embedded.OpenExisting(); err != nil {
				return err
			}
			if err := evs.Recover(ctx); err != nil {
				return fmt.Errorf("recover change events: %w", err)
			}
			close(recovered)
			select {
			case <-stop:
				return nil
			default:
			}
			handler.SetReady()
			logger.Info("ready")
			evs.Run()
			return nil
		}, func(error) {
			<-httpDone
			close(stop)
			evs.Stop()
		})
	}
	{
		// The rules of every organization: evaluated once the storage has
		// recovered, stopped after the HTTP server has drained.
		stop := make(chan struct{})
		g.Add(func() error {
			select {
			case <-recovered:
			case <-stop:
				return nil
			}
			ruleMgr.Run()
			return nil
		}, func(error) {
			<-httpDone
			close(stop)
			ruleMgr.Stop()
			close(rulesDone)
		})
	}
	for _, s := range senders {
		// Alertmanagers and webhooks: they deliver what the last
		// evaluations queued, then stop.
		g.Add(func() error {
			s.Run()
			return nil
		}, func(error) {
			<-rulesDone
			s.Stop()
		})
	}
	return g.Run()
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
func bootstrap(ctx context.Context, logger *slog.Logger, db *state.DB, dir string) error {
	orgs, err := db.Orgs(ctx)
	if err != nil {
		return err
	}
	if len(orgs) > 0 {
		return nil
	}
	if err := db.CreateOrg(ctx, "default"); err != nil {
		return err
	}
	token := state.NewToken()
	path := filepath.Join(dir, bootstrapTokenFile)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write bootstrap token: %w", err)
	}
	if err := db.AddToken(ctx, "default", state.ScopeAdmin, "bootstrap", state.SourceBootstrap, token); err != nil {
		return err
	}
	logger.Info("first start: created organization default and an admin token", "org", "default", "token_file", path)
	return nil
}
