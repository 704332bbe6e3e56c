// Package config loads Tidemark's optional YAML configuration file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// Config is the configuration file.
type Config struct {
	Organizations []Organization `yaml:"organizations"`
}

// Organization declares an organization and its tokens.
type Organization struct {
	Slug   string  `yaml:"slug"`
	Tokens []Token `yaml:"tokens"`
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
