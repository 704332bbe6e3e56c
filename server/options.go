// Package server builds Tidemark's server from one Options struct and runs
// it: state, storage, change events, rules and alerts, and the HTTP API, with
// the order in which they start, become ready and stop.
//
// It is the one composition root: `tidemark serve` turns its flags into
// Options, and the benchmarks and end-to-end test stacks call the same New,
// so that none of them can drift from what users run.
package server

import (
	"fmt"
	"net"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/tidemark/tidemark/config"
	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/sources"
	"github.com/tidemark/tidemark/storage"
	"github.com/tidemark/tidemark/storage/metadata"
	"github.com/tidemark/tidemark/storage/remote"
	"github.com/tidemark/tidemark/web"
)

// Options configures a server. DefaultOptions gives the values of a
// `tidemark serve` with no flags.
type Options struct {
	// Version is reported by /api/v1/status/buildinfo.
	Version string

	// ListenAddress is where the HTTP API listens, unless Listener is set.
	ListenAddress string
	// Listener, when set, is used instead of listening on ListenAddress.
	Listener net.Listener
	// MaxRequestBytes bounds request bodies (413 beyond it).
	MaxRequestBytes int64
	// ShutdownTimeout is how long a stop waits for in-flight requests.
	ShutdownTimeout time.Duration
	// CORSOrigin is the regexp of the Origins whose browsers may call the
	// Prometheus API; empty: CORS is off.
	CORSOrigin string
	// Pprof serves /debug/pprof/ to admin tokens.
	Pprof bool
	// WebConfigFile is a web configuration file in Prometheus's format
	// (github.com/prometheus/exporter-toolkit: TLS, client certificates,
	// HTTP headers), read again for every connection; empty: plain HTTP.
	WebConfigFile string

	// StoragePath is the data directory: the SQLite state database and one
	// TSDB per organization (embedded storage).
	StoragePath string
	// StateURL is the state database: empty for SQLite in StoragePath,
	// postgres://... for PostgreSQL (shared by replicas).
	StateURL string
	// Storage is where samples live: StorageEmbedded (a TSDB per
	// organization in StoragePath) or StorageRemote (a remote engine).
	Storage string
	// Remote is the remote engine, with Storage StorageRemote. Its Tenant
	// comes from the config's organizations.
	Remote remote.Options
	// Retention is how long samples are kept.
	Retention time.Duration
	// OutOfOrderWindow is how far behind a series' newest sample a sample
	// may still be appended; at least the events' backfill window.
	OutOfOrderWindow time.Duration
	// MaxSeriesPerOrg bounds an organization's active series; 0: none.
	MaxSeriesPerOrg uint64
	// MaxExemplars is how many exemplars each organization's TSDB keeps
	// (embedded storage); 0: none.
	MaxExemplars int64
	// WALCompression is how the records of each organization's WAL are
	// compressed (embedded storage): snappy, zstd or none.
	WALCompression string
	// MaxMetadataFamilies bounds the metric families an organization keeps
	// metadata for (/api/v1/metadata).
	MaxMetadataFamilies int
	// Flags are the command's flags and their values, shown by
	// /api/v1/status/flags.
	Flags map[string]string

	// TokenRequestsPerSecond bounds each token's request rate (0: none);
	// TokenBurst is how many requests may come at once.
	TokenRequestsPerSecond float64
	TokenBurst             int

	QueryTimeout  time.Duration
	LookbackDelta time.Duration
	MaxSamples    int
	// Query is the query path: splitting, sharding, the results cache
	// (docs/query.md).
	Query web.QueryOptions

	Events events.Options

	// LeaseTTL and LeaseRenew time the leases of once-per-organization
	// work (0: lease.DefaultTTL, lease.DefaultRenew).
	LeaseTTL, LeaseRenew time.Duration

	// Config is the configuration file's content; nil: no file.
	Config *config.Config

	// WrapStorage, when set, wraps the storage inside the series limit:
	// tests inject faults with it.
	WrapStorage func(storage.Backend) storage.Backend
	// Hooks, when set, gives the webhook receivers' settings instead of
	// the config's hooks sections.
	Hooks func(org string) sources.Settings
	// AlertSenders receive every alert besides the configuration's
	// Alertmanagers and webhooks: tests capture alerts with it.
	AlertSenders []rules.Sender
}

// The storage backends.
const (
	StorageEmbedded = "embedded"
	StorageRemote   = "remote"
)

// DefaultOptions are the options of a `tidemark serve` with no flags.
func DefaultOptions() Options {
	return Options{
		ListenAddress:          ":9470",
		MaxRequestBytes:        32 << 20,
		ShutdownTimeout:        30 * time.Second,
		StoragePath:            "./data",
		Storage:                StorageEmbedded,
		Remote:                 remote.Options{TenantHeader: "X-Scope-OrgID"},
		Retention:              15 * 24 * time.Hour,
		MaxSeriesPerOrg:        2_000_000,
		MaxExemplars:           100_000,
		WALCompression:         compression.Snappy,
		MaxMetadataFamilies:    metadata.DefaultMaxPerOrg,
		TokenRequestsPerSecond: 500,
		TokenBurst:             1000,
		QueryTimeout:           2 * time.Minute,
		LookbackDelta:          5 * time.Minute,
		MaxSamples:             50_000_000,
		Query:                  web.QueryOptions{ResultsCacheMaxBytes: 128 << 20},
		Events: events.Options{
			MetricName:       events.DefaultMetricName,
			ActiveResolution: 15 * time.Second,
			MaxDuration:      24 * time.Hour,
			Limits:           events.DefaultLimits,
		},
	}
}

// validate checks what New cannot build with. The errors name the flags of
// `tidemark serve`, which users see.
func (o *Options) validate() error {
	for _, n := range append([]string{o.Events.MetricName}, o.Events.CompatMetricNames...) {
		if !model.LegacyValidation.IsValidMetricName(n) {
			return fmt.Errorf("metric name %q is not accepted (--events.metric-name, --events.compat-metric-names): use [a-zA-Z_:][a-zA-Z0-9_:]*", n)
		}
	}
	if o.Events.Limits.MaxBatch < 1 {
		return fmt.Errorf("--events.max-batch %d is not accepted: use 1 or more", o.Events.Limits.MaxBatch)
	}
	if o.Events.ActiveResolution < time.Second {
		return fmt.Errorf("--events.active-resolution %s is not accepted: use 1s or more", o.Events.ActiveResolution)
	}
	if o.LeaseTTL > 0 && o.LeaseRenew > 0 && o.LeaseRenew*2 > o.LeaseTTL {
		return fmt.Errorf("--leases.renew-interval %s is not accepted with --leases.ttl %s: use at most half the TTL", o.LeaseRenew, o.LeaseTTL)
	}
	if o.StoragePath == "" {
		return fmt.Errorf("--storage.path is empty: name a data directory")
	}
	switch o.Storage {
	case StorageEmbedded:
	case StorageRemote:
		if o.Remote.WriteURL == "" || o.Remote.QueryURL == "" {
			return fmt.Errorf("--storage.backend=remote needs --storage.remote.write-url and --storage.remote.query-url")
		}
	default:
		return fmt.Errorf("--storage.backend %q is not accepted: use embedded or remote", o.Storage)
	}
	return nil
}
