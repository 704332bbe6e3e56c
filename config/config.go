// Package config loads Tidemark's optional YAML configuration file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/tidemark/tidemark/impact"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// Config is the configuration file.
type Config struct {
	Organizations []Organization `yaml:"organizations"`
	Alerting      Alerting       `yaml:"alerting"`
	Hooks         Hooks          `yaml:"hooks"`
	// TrafficShifts configures the traffic-shift detector (shifts.go);
	// nil: none.
	TrafficShifts *TrafficShifts `yaml:"traffic_shifts"`
	Impact        *Impact        `yaml:"impact"`

	// impact are the checked impact settings by organization, "" for the
	// top level (impact.go).
	impact map[string]*impact.Settings
}

// Organization declares an organization, its tokens and its own webhook
// receiver (hooks.go) and traffic-shift detector (shifts.go) settings.
type Organization struct {
	Slug   string  `yaml:"slug"`
	Tokens []Token `yaml:"tokens"`
	// Tenant is the organization's tenant in a remote metrics engine
	// (--storage.backend=remote); empty: its slug.
	Tenant        string         `yaml:"tenant"`
	Hooks         *Hooks         `yaml:"hooks"`
	TrafficShifts *TrafficShifts `yaml:"traffic_shifts"`
	// Impact overrides the top-level impact settings (impact.go).
	Impact *Impact `yaml:"impact"`
}

// Token declares a token. Exactly one of Value and ValueFile is set; a
// ValueFile (for example a mounted Kubernetes Secret) holds the token, with
// surrounding whitespace ignored.
type Token struct {
	Name      string `yaml:"name"`
	Scope     string `yaml:"scope"`
	Value     string `yaml:"value"`
	ValueFile string `yaml:"value_file"`
}

// Load reads and validates a config file. Relative value_file paths are
// relative to the file's directory.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	c, err := Parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, nil
}

// Parse parses and validates a config file's content. Unknown fields are
// errors, so a typo does not silently drop a setting.
func Parse(b []byte, baseDir string) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file is an empty config.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := c.resolve(baseDir); err != nil {
		return nil, err
	}
	if err := c.Alerting.resolve(baseDir); err != nil {
		return nil, fmt.Errorf("alerting.%w", err)
	}
	if err := c.resolveHooks(baseDir); err != nil {
		return nil, err
	}
	if err := c.resolveTrafficShifts(); err != nil {
		return nil, err
	}
	if err := c.resolveImpact(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) resolve(baseDir string) error {
	seenOrg := map[string]bool{}
	seenValue := map[string]string{}
	for i := range c.Organizations {
		o := &c.Organizations[i]
		if err := storage.ValidSlug(o.Slug); err != nil {
			return fmt.Errorf("organizations[%d].slug: %w", i, err)
		}
		if seenOrg[o.Slug] {
			return fmt.Errorf("organizations[%d].slug: organization %q is declared twice", i, o.Slug)
		}
		seenOrg[o.Slug] = true
		if o.Tenant != "" && !validTenant(o.Tenant) {
			return fmt.Errorf("organizations[%d] (%s).tenant: %q is not accepted; accepted: 1 to 150 of the characters a-z A-Z 0-9 ! - _ . * ' ( ) (Cortex's and Mimir's tenant IDs)", i, o.Slug, o.Tenant)
		}
		for j := range o.Tokens {
			t := &o.Tokens[j]
			where := fmt.Sprintf("organizations[%d] (%s) tokens[%d]", i, o.Slug, j)
			if t.Name == "" {
				return fmt.Errorf("%s.name: missing; accepted: any non-empty name", where)
			}
			if _, err := state.ParseScope(t.Scope); err != nil {
				return fmt.Errorf("%s.scope: %w", where, err)
			}
			switch {
			case t.Value != "" && t.ValueFile != "":
				return fmt.Errorf("%s: both value and value_file are set; accepted: one of them", where)
			case t.ValueFile != "":
				p := t.ValueFile
				if !filepath.IsAbs(p) {
					p = filepath.Join(baseDir, p)
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return fmt.Errorf("%s.value_file: %w", where, err)
				}
				t.Value = strings.TrimSpace(string(b))
			}
			if len(t.Value) < state.MinTokenLength {
				return fmt.Errorf("%s.value: the token is %d characters long; accepted: at least %d characters (generate one with 'openssl rand -hex 32')", where, len(t.Value), state.MinTokenLength)
			}
			if strings.ContainsAny(t.Value, " \t\r\n") {
				return fmt.Errorf("%s.value: the token contains whitespace; accepted: a token without spaces", where)
			}
			if prev, dup := seenValue[t.Value]; dup {
				return fmt.Errorf("%s.value: the same token value is declared for %s; accepted: a distinct value per token", where, prev)
			}
			seenValue[t.Value] = where
		}
	}
	return nil
}

// validTenant reports whether s is a tenant ID Cortex and Mimir accept.
func validTenant(s string) bool {
	if len(s) == 0 || len(s) > 150 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		ok := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || strings.ContainsRune("!-_.*'()", r)
		if !ok {
			return false
		}
	}
	return true
}

// Tenants returns the declared tenant of every organization that has one.
func (c *Config) Tenants() map[string]string {
	out := map[string]string{}
	for _, o := range c.Organizations {
		if o.Tenant != "" {
			out[o.Slug] = o.Tenant
		}
	}
	return out
}

// StateTokens returns the declared organizations and tokens in the form the
// state database takes.
func (c *Config) StateTokens() ([]string, []state.ConfigToken) {
	var orgs []string
	var toks []state.ConfigToken
	for _, o := range c.Organizations {
		orgs = append(orgs, o.Slug)
		for _, t := range o.Tokens {
			toks = append(toks, state.ConfigToken{Org: o.Slug, Name: t.Name, Scope: state.Scope(t.Scope), Value: t.Value})
		}
	}
	return orgs, toks
}

// Alerting configures rule evaluation and alert delivery.
type Alerting struct {
	// AlertmanagerURLs are Alertmanagers' base URLs; alerts are posted to
	// their v2 API (POST <url>/api/v2/alerts). User and password in a URL
	// are sent as basic auth.
	AlertmanagerURLs []string `yaml:"alertmanager_urls"`
	// WebhookURLs receive a plain JSON POST of the alerts.
	WebhookURLs   []string      `yaml:"webhook_urls"`
	ChangeContext ChangeContext `yaml:"change_context"`
	// RuleFiles are Prometheus rule files by organization slug: file
	// paths or globs, relative to the config file's directory.
	RuleFiles map[string][]string `yaml:"rule_files"`
	// EvaluationInterval is the interval of groups that set none.
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	// ResendDelay is how long an alert waits before it is sent again.
	ResendDelay model.Duration `yaml:"resend_delay"`
	// ForGracePeriod and OutageTolerance restore the `for` state of
	// pending alerts after a restart, as Prometheus's
	// --rules.alert.for-grace-period and --rules.alert.for-outage-tolerance.
	ForGracePeriod  model.Duration `yaml:"for_grace_period"`
	OutageTolerance model.Duration `yaml:"outage_tolerance"`
	// SyncInterval is how often rule groups are read again from the state
	// database (the ruler API) and the rule files.
	SyncInterval model.Duration `yaml:"sync_interval"`
	// ExternalURL is the URL alerts link back to (their generator URL);
	// empty means http://<hostname>:<listen port>.
	ExternalURL string `yaml:"external_url"`
}

// ChangeContext configures the change events an alert carries.
type ChangeContext struct {
	// Lookback is how long before an alert's start an event is still
	// context.
	Lookback model.Duration `yaml:"lookback"`
	// MatchLabels are the labels an event shares with an alert to be its
	// context: one of them with the same value on both is enough. An empty
	// list (written as []) turns the context off.
	MatchLabels []string `yaml:"match_labels"`
	// MaxEvents is the most events one alert carries, newest first.
	MaxEvents int `yaml:"max_events"`
}

// defaultMatchLabels are the labels that tie a change event to an alert
// unless match_labels says otherwise.
func defaultMatchLabels() []string { return []string{"service", "namespace", "env", "app"} }

// DefaultAlerting returns the alerting settings a missing or empty
// alerting section means.
func DefaultAlerting() Alerting {
	a := Alerting{}
	a.resolve("")
	return a
}

func (a *Alerting) resolve(baseDir string) error {
	defaults := []struct {
		d   *model.Duration
		def time.Duration
	}{
		{&a.EvaluationInterval, time.Minute},
		{&a.ResendDelay, time.Minute},
		{&a.ForGracePeriod, 10 * time.Minute},
		{&a.OutageTolerance, time.Hour},
		{&a.SyncInterval, 10 * time.Second},
		{&a.ChangeContext.Lookback, 30 * time.Minute},
	}
	for _, d := range defaults {
		if *d.d == 0 {
			*d.d = model.Duration(d.def)
		}
	}
	if a.ChangeContext.MatchLabels == nil {
		a.ChangeContext.MatchLabels = defaultMatchLabels()
	}
	if a.ChangeContext.MaxEvents == 0 {
		a.ChangeContext.MaxEvents = 10
	}
	if a.ChangeContext.MaxEvents < 0 {
		return fmt.Errorf("change_context.max_events: %d is not accepted; accepted: 1 or more", a.ChangeContext.MaxEvents)
	}
	for i, l := range a.ChangeContext.MatchLabels {
		if !model.LegacyValidation.IsValidLabelName(l) {
			return fmt.Errorf("change_context.match_labels[%d]: %q is not accepted; accepted: a label name [a-zA-Z_][a-zA-Z0-9_]*", i, l)
		}
	}
	for _, list := range []struct {
		field string
		urls  []string
	}{{"alertmanager_urls", a.AlertmanagerURLs}, {"webhook_urls", a.WebhookURLs}} {
		for i, raw := range list.urls {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%s[%d]: %q is not accepted; accepted: an http:// or https:// URL with a host", list.field, i, raw)
			}
		}
	}
	if a.ExternalURL != "" {
		u, err := url.Parse(a.ExternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("external_url: %q is not accepted; accepted: an http:// or https:// URL with a host", a.ExternalURL)
		}
	}
	for org, files := range a.RuleFiles {
		if err := storage.ValidSlug(org); err != nil {
			return fmt.Errorf("rule_files: %w", err)
		}
		for i, f := range files {
			if _, err := filepath.Match(f, ""); err != nil {
				return fmt.Errorf("rule_files.%s[%d]: %q is not a valid file pattern: %w", org, i, f, err)
			}
			if !filepath.IsAbs(f) && baseDir != "" {
				files[i] = filepath.Join(baseDir, f)
			}
		}
	}
	return nil
}
