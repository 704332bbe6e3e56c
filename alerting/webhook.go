package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/notifier"
)

// WebhookPayload is the body of a webhook POST (Content-Type
// application/json): the alerts of one organization from one evaluation.
//
//	{"version": "1", "org": "acme", "alerts": [{"status": "firing",
//	  "labels": {...}, "annotations": {...}, "startsAt": "...", "endsAt": "...",
//	  "generatorURL": "...", "change_events": [{"name", "state", "timestamp",
//	  "labels", "links"}], "suspected_changes": [{"name", ..., "verdict",
//	  "reason"}]}]}
type WebhookPayload struct {
	Version string         `json:"version"`
	Org     string         `json:"org"`
	Alerts  []WebhookAlert `json:"alerts"`
}

// WebhookAlert is one alert of a WebhookPayload: the fields Alertmanager's
// API takes, its status, and the change context decoded (the same as the
// change_events_json annotation) and ranked (suspected_changes_json).
type WebhookAlert struct {
	Status       string            `json:"status"` // firing or resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	ChangeEvents []ContextEvent    `json:"change_events"`
	Suspects     []Suspect         `json:"suspected_changes"`
}

// WebhookOptions configures the webhooks.
type WebhookOptions struct {
	URLs []string
	// Timeout bounds one POST (default 10s).
	Timeout time.Duration
	// QueueSize is how many payloads wait per URL before new ones are
	// dropped (default 1000).
	QueueSize int
	// Client sends the requests (default: a client with no timeout of its
	// own; Timeout applies).
	Client *http.Client
}

// Webhooks posts alerts as JSON to plain HTTP endpoints: one queue and one
// sender goroutine per URL, a payload retried 3 times on a network error,
// 429 or 5xx. Alerts that stay firing are sent again every resend delay,
// so a payload that is lost is not the last word. It implements
// rules.Sender; Send is safe for concurrent use.
type Webhooks struct {
	logger *slog.Logger
	opts   WebhookOptions
	hooks  []*webhook
	wg     sync.WaitGroup
	quit   chan struct{}
	once   sync.Once

	sent, failed, dropped *prometheus.CounterVec
}

type webhook struct {
	url   string
	label string // the URL without credentials or query, for metrics and logs
	queue chan []byte
}

// NewWebhooks returns the webhook senders. Call Run, then Stop after the
// last Send.
func NewWebhooks(logger *slog.Logger, reg prometheus.Registerer, opts WebhookOptions) (*Webhooks, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1000
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	w := &Webhooks{logger: logger, opts: opts, quit: make(chan struct{})}
	for _, raw := range opts.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("webhook URL %q is not accepted; accepted: an http:// or https:// URL with a host", raw)
		}
		w.hooks = append(w.hooks, &webhook{url: raw, label: u.Scheme + "://" + u.Host + u.Path, queue: make(chan []byte, opts.QueueSize)})
	}
	f := promauto.With(reg)
	w.sent = f.NewCounterVec(prometheus.CounterOpts{
		Name: "tidemark_alert_webhook_sent_total",
		Help: "Webhook payloads delivered (2xx), by webhook.",
	}, []string{"webhook"})
	w.failed = f.NewCounterVec(prometheus.CounterOpts{
		Name: "tidemark_alert_webhook_failed_total",
		Help: "Webhook payloads given up on after retries, by webhook.",
	}, []string{"webhook"})
	w.dropped = f.NewCounterVec(prometheus.CounterOpts{
		Name: "tidemark_alert_webhook_dropped_total",
		Help: "Webhook payloads dropped because the queue was full, by webhook.",
	}, []string{"webhook"})
	return w, nil
}

// Send implements rules.Sender: one payload per organization.
func (w *Webhooks) Send(alerts ...*notifier.Alert) {
	byOrg := map[string][]WebhookAlert{}
	for _, a := range alerts {
		org := a.Labels.Get(LabelOrg)
		byOrg[org] = append(byOrg[org], webhookAlert(a))
	}
	orgs := make([]string, 0, len(byOrg))
	for org := range byOrg {
		orgs = append(orgs, org)
	}
	sort.Strings(orgs)
	for _, org := range orgs {
		body, err := json.Marshal(WebhookPayload{Version: "1", Org: org, Alerts: byOrg[org]})
		if err != nil {
			w.logger.Error("encode webhook payload", "org", org, "err", err)
			continue
		}
		for _, h := range w.hooks {
			select {
			case h.queue <- body:
			default:
				w.dropped.WithLabelValues(h.label).Inc()
				w.logger.Warn("webhook queue is full; alerts dropped", "webhook", h.label, "org", org)
			}
		}
	}
}

func webhookAlert(a *notifier.Alert) WebhookAlert {
	wa := WebhookAlert{
		Status:       "firing",
		Labels:       a.Labels.Map(),
		Annotations:  a.Annotations.Map(),
		StartsAt:     a.StartsAt,
		EndsAt:       a.EndsAt,
		GeneratorURL: a.GeneratorURL,
		ChangeEvents: []ContextEvent{},
		Suspects:     []Suspect{},
	}
	if a.Resolved() {
		wa.Status = "resolved"
	}
	if js := a.Annotations.Get(AnnotationChangeEventsJSON); js != "" {
		var evs []ContextEvent
		if json.Unmarshal([]byte(js), &evs) == nil && evs != nil {
			wa.ChangeEvents = evs
		}
	}
	if js := a.Annotations.Get(AnnotationSuspectedChangesJSON); js != "" {
		var sus []Suspect
		if json.Unmarshal([]byte(js), &sus) == nil && sus != nil {
			wa.Suspects = sus
		}
	}
	return wa
}

// Run sends queued payloads until Stop, then sends what is still queued.
func (w *Webhooks) Run() {
	for _, h := range w.hooks {
		w.wg.Go(func() { w.loop(h) })
	}
	w.wg.Wait()
}

// Stop ends Run after the queues are drained (one attempt per payload).
func (w *Webhooks) Stop() { w.once.Do(func() { close(w.quit) }) }

func (w *Webhooks) loop(h *webhook) {
	for {
		select {
		case body := <-h.queue:
			w.deliver(h, body, 3)
		case <-w.quit:
			for {
				select {
				case body := <-h.queue:
					w.deliver(h, body, 1)
				default:
					return
				}
			}
		}
	}
}

func (w *Webhooks) deliver(h *webhook, body []byte, attempts int) {
	backoff := 500 * time.Millisecond
	for i := 1; ; i++ {
		retry, err := w.post(h, body)
		if err == nil {
			w.sent.WithLabelValues(h.label).Inc()
			return
		}
		if !retry || i >= attempts {
			w.failed.WithLabelValues(h.label).Inc()
			w.logger.Warn("webhook delivery failed", "webhook", h.label, "attempts", i, "err", err)
			return
		}
		select {
		case <-time.After(backoff):
			backoff *= 2
		case <-w.quit:
			attempts = i + 1
		}
	}
}

// post sends one payload; retry tells whether a failure may pass.
func (w *Webhooks) post(h *webhook, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Tidemark")
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return true, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return true, fmt.Errorf("status %s", resp.Status)
	default:
		return false, fmt.Errorf("status %s", resp.Status)
	}
}
