package alerting

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/notifier"
)

// AlertmanagerOptions configures the Alertmanagers alerts are sent to.
type AlertmanagerOptions struct {
	// URLs are Alertmanagers' base URLs (the v2 API is under
	// <url>/api/v2/). User and password in a URL are sent as basic auth.
	URLs []string
	// Timeout bounds one POST (default 10s).
	Timeout time.Duration
	// QueueCapacity is how many alerts wait per Alertmanager (default
	// 10000, as Prometheus's --alertmanager.notification-queue-capacity).
	QueueCapacity int
}

// Alertmanagers sends alerts to Alertmanagers through Prometheus's
// notifier: batched, queued per Alertmanager, drained on shutdown. It
// implements rules.Sender; Send is safe for concurrent use.
type Alertmanagers struct {
	n   *notifier.Manager
	tgs chan map[string][]*targetgroup.Group
}

// NewAlertmanagers returns the notifier for opts.URLs. Call Run, then
// Stop after the last Send.
func NewAlertmanagers(logger *slog.Logger, reg prometheus.Registerer, opts AlertmanagerOptions) (*Alertmanagers, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.QueueCapacity <= 0 {
		opts.QueueCapacity = 10000
	}
	cfg := config.DefaultConfig
	tgs := map[string][]*targetgroup.Group{}
	for i, raw := range opts.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alertmanager URL %q is not accepted; accepted: an http:// or https:// URL with a host", raw)
		}
		am := config.DefaultAlertmanagerConfig
		am.Scheme = u.Scheme
		am.PathPrefix = strings.TrimSuffix(u.Path, "/")
		am.Timeout = model.Duration(opts.Timeout)
		if u.User != nil {
			pw, _ := u.User.Password()
			am.HTTPClientConfig.BasicAuth = &config_util.BasicAuth{Username: u.User.Username(), Password: config_util.Secret(pw)}
		}
		cfg.AlertingConfig.AlertmanagerConfigs = append(cfg.AlertingConfig.AlertmanagerConfigs, &am)
		// ToMap names the i-th config "config-i"; the static target is
		// what Prometheus's discovery would hand over.
		key := fmt.Sprintf("config-%d", i)
		tgs[key] = []*targetgroup.Group{{
			Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}},
			Source:  key,
		}}
	}
	n := notifier.NewManager(&notifier.Options{
		QueueCapacity:   opts.QueueCapacity,
		DrainOnShutdown: true,
		Registerer:      reg,
	}, model.UTF8Validation, logger)
	if err := n.ApplyConfig(&cfg); err != nil {
		return nil, fmt.Errorf("configure alertmanagers: %w", err)
	}
	a := &Alertmanagers{n: n, tgs: make(chan map[string][]*targetgroup.Group, 1)}
	a.tgs <- tgs
	return a, nil
}

// Send implements rules.Sender.
func (a *Alertmanagers) Send(alerts ...*notifier.Alert) { a.n.Send(alerts...) }

// Run sends queued alerts until Stop.
func (a *Alertmanagers) Run() { a.n.Run(a.tgs) }

// Stop ends Run once the queues are drained.
func (a *Alertmanagers) Stop() { a.n.Stop() }
