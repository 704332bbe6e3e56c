package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tidemark/tidemark/sources"
)

// Hooks configures the webhook receivers (docs/sources.md). At the top
// level it applies to every organization; organizations[].hooks overrides
// it for one: a vendor block set there replaces the top-level one, and a
// generic hook replaces the top-level hook of the same name.
type Hooks struct {
	GitHub       *SecretHook   `yaml:"github"`
	GitLab       *TokenHook    `yaml:"gitlab"`
	LaunchDarkly *SecretHook   `yaml:"launchdarkly"`
	Generic      []GenericHook `yaml:"generic"`
}

// SecretHook holds the secret a vendor signs its deliveries with: secret,
// or secret_file (for example a mounted Kubernetes Secret; surrounding
// whitespace is ignored).
type SecretHook struct {
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
}

// TokenHook holds the token a vendor sends with its deliveries: token, or
// token_file.
type TokenHook struct {
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// GenericHook maps any JSON webhook to a change event, received at
// POST /api/v4/organizations/{org}/hooks/generic/{name}. A value starting
// with $ is an RFC 9535 JSONPath into the payload; anything else is taken
// as it is (see sources.GenericSpec).
type GenericHook struct {
	Name      string            `yaml:"name"`
	EventName string            `yaml:"event_name"`
	State     string            `yaml:"state"`
	States    map[string]string `yaml:"states"`
	Timestamp string            `yaml:"timestamp"`
	ID        string            `yaml:"id"`
	Labels    map[string]string `yaml:"labels"`
	Metadata  map[string]string `yaml:"metadata"`

	compiled *sources.Generic
}

// resolveHooks reads secret files and checks and compiles the hooks of the
// top level and of every organization.
func (c *Config) resolveHooks(baseDir string) error {
	if err := c.Hooks.resolve(baseDir, "hooks"); err != nil {
		return err
	}
	for i := range c.Organizations {
		o := &c.Organizations[i]
		if o.Hooks == nil {
			continue
		}
		if err := o.Hooks.resolve(baseDir, fmt.Sprintf("organizations[%d] (%s) hooks", i, o.Slug)); err != nil {
			return err
		}
	}
	return nil
}

func (h *Hooks) resolve(baseDir, where string) error {
	if h.GitHub != nil {
		if err := readSecret(baseDir, where+".github", "secret", &h.GitHub.Secret, h.GitHub.SecretFile); err != nil {
			return err
		}
	}
	if h.GitLab != nil {
		if err := readSecret(baseDir, where+".gitlab", "token", &h.GitLab.Token, h.GitLab.TokenFile); err != nil {
			return err
		}
	}
	if h.LaunchDarkly != nil {
		if err := readSecret(baseDir, where+".launchdarkly", "secret", &h.LaunchDarkly.Secret, h.LaunchDarkly.SecretFile); err != nil {
			return err
		}
	}
	seen := map[string]int{}
	for i := range h.Generic {
		g := &h.Generic[i]
		field := fmt.Sprintf("%s.generic[%d]", where, i)
		if prev, dup := seen[g.Name]; dup {
			return fmt.Errorf("%s.name: %q is declared twice (also %s.generic[%d]); accepted: a distinct name per hook", field, g.Name, where, prev)
		}
		seen[g.Name] = i
		compiled, err := sources.NewGeneric(sources.GenericSpec{
			Name: g.Name, EventName: g.EventName, State: g.State, States: g.States,
			Timestamp: g.Timestamp, ID: g.ID, Labels: g.Labels, Metadata: g.Metadata,
		})
		if err != nil {
			return fmt.Errorf("%s.%w", field, err)
		}
		g.compiled = compiled
	}
	return nil
}

// readSecret sets *value from the file when one is named, and checks that
// exactly one of the two is set.
func readSecret(baseDir, where, key string, value *string, file string) error {
	switch {
	case *value != "" && file != "":
		return fmt.Errorf("%s: both %s and %s_file are set; accepted: one of them", where, key, key)
	case file != "":
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s.%s_file: %w", where, key, err)
		}
		*value = strings.TrimSpace(string(b))
		if *value == "" {
			return fmt.Errorf("%s.%s_file: %s is empty; accepted: a file holding the %s", where, key, p, key)
		}
	case *value == "":
		return fmt.Errorf("%s: neither %s nor %s_file is set; accepted: one of them (the same value as in the vendor's webhook settings)", where, key, key)
	}
	return nil
}

// HookSettings returns the webhook receiver settings of an organization:
// the top-level hooks with the organization's own over them.
func (c *Config) HookSettings(org string) sources.Settings {
	h := c.Hooks
	for _, o := range c.Organizations {
		if o.Slug != org || o.Hooks == nil {
			continue
		}
		if o.Hooks.GitHub != nil {
			h.GitHub = o.Hooks.GitHub
		}
		if o.Hooks.GitLab != nil {
			h.GitLab = o.Hooks.GitLab
		}
		if o.Hooks.LaunchDarkly != nil {
			h.LaunchDarkly = o.Hooks.LaunchDarkly
		}
		merged := append([]GenericHook(nil), c.Hooks.Generic...)
	own:
		for _, g := range o.Hooks.Generic {
			for i := range merged {
				if merged[i].Name == g.Name {
					merged[i] = g
					continue own
				}
			}
			merged = append(merged, g)
		}
		h.Generic = merged
	}
	var s sources.Settings
	if h.GitHub != nil {
		s.GitHubSecret = h.GitHub.Secret
	}
	if h.GitLab != nil {
		s.GitLabToken = h.GitLab.Token
	}
	if h.LaunchDarkly != nil {
		s.LaunchDarklySecret = h.LaunchDarkly.Secret
	}
	for _, g := range h.Generic {
		if g.compiled != nil {
			s.Generic = append(s.Generic, g.compiled)
		}
	}
	return s
}
