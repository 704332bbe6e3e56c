package main

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/tidemark/tidemark/config"
	"github.com/tidemark/tidemark/lease"
	"github.com/tidemark/tidemark/server"
)

// serveCmd is `tidemark serve`: its flags fill server.Options, whose
// defaults are the flags' defaults.
type serveCmd struct {
	cmd *kingpin.CmdClause

	opts            server.Options
	maxRequestBytes units.Base2Bytes
	queryCacheBytes units.Base2Bytes
	configFile      string
	compatNames     string
	log             logFlags
	runtime         runtimeFlags
}

func newServeCmd(app *kingpin.Application) *serveCmd {
	c := &serveCmd{opts: server.DefaultOptions()}
	o := &c.opts
	c.cmd = app.Command("serve", "Run the server.").Default()
	f := c.cmd.Flag
	f("web.listen-address", "Address to listen on for the API.").Default(o.ListenAddress).StringVar(&o.ListenAddress)
	f("web.max-request-bytes", "Largest request body accepted (413 beyond it).").Default(units.Base2Bytes(o.MaxRequestBytes).String()).BytesVar(&c.maxRequestBytes)
	durationFlag(f("web.shutdown-timeout", "How long a shutdown waits for in-flight requests.").Default(durationString(o.ShutdownTimeout)), &o.ShutdownTimeout)
	f("web.cors.origin", `Regexp of the Origins whose browsers may call the Prometheus API (e.g. 'https?://grafana\.example\.com'); empty: CORS off.`).Default(o.CORSOrigin).StringVar(&o.CORSOrigin)
	f("web.config.file", "Web configuration file in Prometheus's format (TLS, client certificates, HTTP headers; see docs/tls.md), read again for each connection; empty: plain HTTP.").Default(o.WebConfigFile).StringVar(&o.WebConfigFile)
	f("debug.pprof", "Serve Go's runtime profiles under /debug/pprof/ to admin tokens.").Default(strconv.FormatBool(o.Pprof)).BoolVar(&o.Pprof)
	c.runtime.register(c.cmd)
	f("limits.max-series-per-org", "Most active series an organization may have; writes that would create more are refused (400). 0: no limit.").Default(strconv.FormatUint(o.MaxSeriesPerOrg, 10)).Uint64Var(&o.MaxSeriesPerOrg)
	f("limits.token-requests-per-second", "Requests per second each token may send; more are refused with 429 and Retry-After. 0: no limit.").Default(strconv.FormatFloat(o.TokenRequestsPerSecond, 'g', -1, 64)).Float64Var(&o.TokenRequestsPerSecond)
	f("limits.token-burst", "Requests a token may send at once above its rate.").Default(strconv.Itoa(o.TokenBurst)).IntVar(&o.TokenBurst)
	f("storage.path", "Data directory: the state database and one TSDB per organization.").Default(o.StoragePath).StringVar(&o.StoragePath)
	enumFlag(f("storage.backend", "Where samples live: embedded (a TSDB per organization under --storage.path) or remote (a Prometheus-compatible multi-tenant engine: Cortex, Mimir; docs/scale-out.md).").Default(o.Storage), &o.Storage, server.StorageEmbedded, server.StorageRemote)
	f("storage.remote.write-url", "Remote engine's remote-write endpoint, e.g. http://cortex:9009/api/v1/push.").Default(o.Remote.WriteURL).StringVar(&o.Remote.WriteURL)
	f("storage.remote.query-url", "Remote engine's Prometheus API base, e.g. http://cortex:9009/prometheus.").Default(o.Remote.QueryURL).StringVar(&o.Remote.QueryURL)
	f("storage.remote.tenant-header", "Header that carries an organization's tenant to the remote engine.").Default(o.Remote.TenantHeader).StringVar(&o.Remote.TenantHeader)
	durationFlag(f("storage.remote.timeout", "Longest request to the remote engine.").Default("2m"), &o.Remote.Timeout)
	durationFlag(f("leases.ttl", "How long an organization's lease (its active series, rules and alerts) lasts unless its holder renews it; a dead holder's work moves within this and one renew interval.").Default(durationString(lease.DefaultTTL)), &o.LeaseTTL)
	durationFlag(f("leases.renew-interval", "How often leases are renewed, and free ones taken; well under --leases.ttl.").Default(durationString(lease.DefaultRenew)), &o.LeaseRenew)
	f("state.url", "State database: empty for SQLite in --storage.path, or postgres://user@host:5432/db for PostgreSQL shared by replicas.").Default(o.StateURL).StringVar(&o.StateURL)
	f("storage.max-exemplars", "Exemplars each organization keeps (from remote write and OTLP; in memory and the WAL); 0: none.").Default(strconv.FormatInt(o.MaxExemplars, 10)).Int64Var(&o.MaxExemplars)
	enumFlag(f("storage.wal-compression", "How the records of each organization's write-ahead log are compressed, as Prometheus's --storage.tsdb.wal-compression-type (Prometheus compresses with snappy by default too): snappy, zstd or none. A WAL written either way is read either way.").Default(o.WALCompression), &o.WALCompression, compression.Types()...)
	f("storage.max-metadata-families", "Metric families each organization keeps metadata (type, help, unit) of, for /api/v1/metadata.").Default(strconv.Itoa(o.MaxMetadataFamilies)).IntVar(&o.MaxMetadataFamilies)
	durationFlag(f("storage.retention", "How long samples are kept.").Default(durationString(o.Retention)), &o.Retention)
	durationFlag(f("storage.out-of-order-window", "How far behind a series' newest sample a sample may still be appended; at least --events.backfill-window.").Default(durationString(o.OutOfOrderWindow)), &o.OutOfOrderWindow)
	f("config.file", "Optional YAML configuration file (organizations, tokens, alerting, webhook receivers, traffic shifts).").StringVar(&c.configFile)
	durationFlag(f("query.timeout", "Maximum time a query may take.").Default(durationString(o.QueryTimeout)), &o.QueryTimeout)
	durationFlag(f("query.lookback-delta", "How far back PromQL looks for a sample.").Default(durationString(o.LookbackDelta)), &o.LookbackDelta)
	f("query.max-samples", "Most samples a query may load into memory.").Default(strconv.Itoa(o.MaxSamples)).IntVar(&o.MaxSamples)
	f("query.parallelism", "Sub-queries of one query evaluated at once (range queries split by time); 0: one per CPU, 1: no splitting.").Default(strconv.Itoa(o.Query.Parallelism)).IntVar(&o.Query.Parallelism)
	f("query.shards", "Series shards that sum, min, max, count and group are evaluated in; 0 or 1: no sharding.").Default(strconv.Itoa(o.Query.Shards)).IntVar(&o.Query.Shards)
	f("query.results-cache.max-bytes", "Memory for cached range query results, invalidated by appends; 0: no cache.").Default(units.Base2Bytes(o.Query.ResultsCacheMaxBytes).String()).BytesVar(&c.queryCacheBytes)
	c.log.register(c.cmd)

	ev := &o.Events
	f("events.max-batch", "Most change events in one request.").Default(strconv.Itoa(ev.Limits.MaxBatch)).IntVar(&ev.Limits.MaxBatch)
	f("events.metric-name", "Name of the point series of change events.").Default(ev.MetricName).StringVar(&ev.MetricName)
	f("events.compat-metric-names", "Comma-separated further names for the point series, e.g. last9_change_events,last9_domain_events.").Default("").StringVar(&c.compatNames)
	durationFlag(f("events.active-resolution", "Step of the change_event_active samples.").Default(durationString(ev.ActiveResolution)), &ev.ActiveResolution)
	durationFlag(f("events.max-duration", "An open event's active series ends after this long without a stop.").Default(durationString(ev.MaxDuration)), &ev.MaxDuration)
	durationFlag(f("events.backfill-window", "How old an event may be; older ones are refused.").Default(durationString(ev.Limits.Backfill)), &ev.Limits.Backfill)
	durationFlag(f("events.future-window", "How far in the future an event may be (clock skew).").Default(durationString(ev.Limits.Future)), &ev.Limits.Future)
	return c
}

// redactPassword hides the password of a URL (--state.url may hold one).
func redactPassword(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
		return u.String()
	}
	return v
}

func durationString(d time.Duration) string { return model.Duration(d).String() }

// options are the server's options from the flags and the config file.
func (c *serveCmd) options() (server.Options, error) {
	o := c.opts
	o.Version = version
	o.MaxRequestBytes = int64(c.maxRequestBytes)
	o.Query.ResultsCacheMaxBytes = int64(c.queryCacheBytes)
	// /api/v1/status/flags shows them, as Prometheus shows its own.
	o.Flags = map[string]string{}
	for _, fl := range c.cmd.Model().Flags {
		o.Flags[fl.Name] = redactPassword(fl.Value.String())
	}
	for _, n := range strings.Split(c.compatNames, ",") {
		if n = strings.TrimSpace(n); n != "" {
			o.Events.CompatMetricNames = append(o.Events.CompatMetricNames, n)
		}
	}
	if c.configFile != "" {
		cfg, err := config.Load(c.configFile)
		if err != nil {
			return o, err
		}
		o.Config = cfg
	}
	return o, nil
}

func (c *serveCmd) run() int {
	logger := c.log.logger()
	if err := c.serve(logger); err != nil {
		logger.Error("tidemark stopped", "err", err)
		return 1
	}
	return 0
}

func (c *serveCmd) serve(logger *slog.Logger) error {
	opts, err := c.options()
	if err != nil {
		return err
	}
	if err := c.runtime.apply(logger); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("tidemark"),
	)
	srv, err := server.New(logger, reg, opts)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(logger)
	defer stop()
	return srv.Run(ctx)
}

// signalContext is done on SIGINT or SIGTERM.
func signalContext(logger *slog.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	term := make(chan os.Signal, 1)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-term:
			logger.Info("received signal, shutting down", "signal", s.String())
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(term)
		cancel()
	}
}

// logFlags are the logging flags of the long-running commands.
type logFlags struct {
	level, format string
}

func (l *logFlags) register(cmd *kingpin.CmdClause) {
	enumFlag(cmd.Flag("log.level", "Log level: debug, info, warn, error.").Default("info"), &l.level, "debug", "info", "warn", "error")
	enumFlag(cmd.Flag("log.format", "Log format: logfmt or json.").Default("logfmt"), &l.format, "logfmt", "json")
}

func (l *logFlags) logger() *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(l.level))
	opts := &slog.HandlerOptions{Level: lvl}
	if l.format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
