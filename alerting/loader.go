package alerting

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tidemark/tidemark/state"
)

// source is one set of rule groups that an organization's rules manager
// loads as one "file": a namespace of the ruler API, or a rule file.
type source struct {
	// id is what Prometheus calls the group's file: the namespace's name,
	// or the rule file's path.
	id     string
	groups *rulefmt.RuleGroups
	// digest changes whenever the source's content does.
	digest string
}

// groupLoader is the rules.GroupLoader of an organization's manager: it
// hands out the sources read before the manager's Update, so the manager
// never reads the database or the disk itself.
type groupLoader struct {
	parser parser.Parser

	mtx     sync.Mutex
	sources map[string]*rulefmt.RuleGroups
}

func (l *groupLoader) set(srcs []source) {
	m := make(map[string]*rulefmt.RuleGroups, len(srcs))
	for _, s := range srcs {
		m[s.id] = s.groups
	}
	l.mtx.Lock()
	l.sources = m
	l.mtx.Unlock()
}

// Load implements rules.GroupLoader.
func (l *groupLoader) Load(id string, _ bool, _ model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	l.mtx.Lock()
	defer l.mtx.Unlock()
	rgs, ok := l.sources[id]
	if !ok {
		return nil, []error{fmt.Errorf("rule source %q is not loaded", id)}
	}
	return rgs, nil
}

// Parse implements rules.GroupLoader.
func (l *groupLoader) Parse(query string) (parser.Expr, error) { return l.parser.ParseExpr(query) }

// namespaceSources turns an organization's stored rule groups into one
// source per namespace. A stored group that no longer validates is left
// out and logged.
func namespaceSources(logger *slog.Logger, p parser.Parser, rows []state.RuleGroupRow) []source {
	byNS := map[string][]state.RuleGroupRow{}
	var names []string
	for _, r := range rows {
		if _, ok := byNS[r.Namespace]; !ok {
			names = append(names, r.Namespace)
		}
		byNS[r.Namespace] = append(byNS[r.Namespace], r)
	}
	sort.Strings(names)
	out := make([]source, 0, len(names))
	for _, ns := range names {
		h := sha256.New()
		rgs := &rulefmt.RuleGroups{}
		for _, r := range byNS[ns] {
			rg, err := ParseGroup([]byte(r.Body), p)
			if err != nil {
				logger.Error("stored rule group does not validate; skipped", "org", r.Org, "namespace", ns, "group", r.Name, "err", err)
				continue
			}
			rgs.Groups = append(rgs.Groups, rg)
			fmt.Fprintf(h, "%q\x00%q\x00", r.Name, r.Body)
		}
		out = append(out, source{id: ns, groups: rgs, digest: hex.EncodeToString(h.Sum(nil))})
	}
	return out
}

// fileCache keeps the last content of every rule file that parsed, so a
// file broken by an edit keeps its previous rules until it is fixed.
type fileCache struct {
	mtx    sync.Mutex
	files  map[string]cachedFile
	warned map[string]bool // patterns that matched no file, logged once
}

type cachedFile struct {
	content []byte
	source  source
}

// fileSources reads the rule files matching patterns.
func (c *fileCache) fileSources(logger *slog.Logger, p parser.Parser, org string, patterns []string) []source {
	var paths []string
	seen := map[string]bool{}
	for _, pat := range patterns {
		matches, err := filepath.Glob(pat)
		if err != nil {
			logger.Error("bad rule file pattern", "org", org, "pattern", pat, "err", err)
			continue
		}
		c.mtx.Lock()
		if c.warned == nil {
			c.warned = map[string]bool{}
		}
		if len(matches) == 0 && !c.warned[pat] {
			logger.Warn("rule file pattern matches no file", "org", org, "pattern", pat)
		}
		c.warned[pat] = len(matches) == 0
		c.mtx.Unlock()
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				paths = append(paths, m)
			}
		}
	}
	sort.Strings(paths)
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if c.files == nil {
		c.files = map[string]cachedFile{}
	}
	var out []source
	for _, path := range paths {
		prev, havePrev := c.files[path]
		b, err := os.ReadFile(path)
		if err != nil {
			logger.Error("read rule file", "org", org, "file", path, "err", err)
			if havePrev {
				out = append(out, prev.source)
			}
			continue
		}
		if havePrev && bytes.Equal(b, prev.content) {
			out = append(out, prev.source)
			continue
		}
		rgs, errs := rulefmt.Parse(b, false, model.UTF8Validation, p, logger)
		if len(errs) > 0 {
			for _, err := range errs {
				logger.Error("rule file does not validate; its previous content stays loaded", "org", org, "file", path, "err", err)
			}
			if havePrev {
				out = append(out, prev.source)
			}
			continue
		}
		sum := sha256.Sum256(b)
		src := source{id: path, groups: rgs, digest: hex.EncodeToString(sum[:])}
		c.files[path] = cachedFile{content: b, source: src}
		out = append(out, src)
	}
	return out
}

// CheckRuleFiles parses the rule files matching every organization's
// patterns and returns the first error, so that a bad file fails a start
// as it does Prometheus's.
func CheckRuleFiles(files map[string][]string) error {
	p := parser.NewParser(parser.Options{})
	orgs := make([]string, 0, len(files))
	for org := range files {
		orgs = append(orgs, org)
	}
	sort.Strings(orgs)
	for _, org := range orgs {
		for _, pat := range files[org] {
			matches, err := filepath.Glob(pat)
			if err != nil {
				return fmt.Errorf("rule files of organization %q: pattern %q: %w", org, pat, err)
			}
			for _, m := range matches {
				if _, errs := rulefmt.ParseFile(m, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler)); len(errs) > 0 {
					return fmt.Errorf("rule files of organization %q: %w", org, errs[0])
				}
			}
		}
	}
	return nil
}

// digestOf is the digest of an organization's sources together.
func digestOf(srcs []source) string {
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "%q\x00%s\x00", s.id, s.digest)
	}
	return hex.EncodeToString(h.Sum(nil))
}
