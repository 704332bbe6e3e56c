package alerting

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/tidemark/tidemark/state"
)

// The ruler API's format: a rule group is one element of a Prometheus rule
// file's `groups` list, as YAML; a listing is a YAML map from namespace to
// its list of groups (the shape of the Cortex and Mimir ruler API):
//
//	canary:
//	  - name: checkout
//	    interval: 30s
//	    rules:
//	      - alert: CheckoutCanaryErrors
//	        expr: ...

// GroupError is why a rule group is refused. Its message names the group,
// the rule (by position and name) and the error.
type GroupError struct{ msg string }

func (e *GroupError) Error() string { return e.msg }

func groupErrorf(format string, args ...any) error {
	return &GroupError{msg: fmt.Sprintf(format, args...)}
}

// ParseGroup parses and validates one rule group with Prometheus's rulefmt,
// as Prometheus validates a rule file. Every error is a *GroupError.
func ParseGroup(body []byte, p parser.Parser) (rulefmt.RuleGroup, error) {
	var rg rulefmt.RuleGroup
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(&rg); err != nil {
		if errors.Is(err, io.EOF) {
			return rg, groupErrorf("the body is empty; accepted: one Prometheus rule group as YAML (name, interval, rules)")
		}
		return rg, groupErrorf("the body is not one Prometheus rule group: %v", err)
	}
	var more any
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return rg, groupErrorf("rule group %q: the body holds more than one YAML document; accepted: one rule group", rg.Name)
	}
	if strings.TrimSpace(rg.Name) == "" {
		return rg, groupErrorf(`the rule group has no name; accepted: a non-empty "name"`)
	}
	// rulefmt validates a whole file: wrap the group into one.
	file, err := yaml.Marshal(rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{rg}})
	if err != nil {
		return rg, groupErrorf("rule group %q: %v", rg.Name, err)
	}
	_, errs := rulefmt.Parse(file, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		msgs := make([]string, 0, len(errs))
		for _, err := range errs {
			msgs = append(msgs, describeRuleError(rg.Name, err))
		}
		return rg, &GroupError{msg: strings.Join(msgs, "; ")}
	}
	return rg, nil
}

// describeRuleError words a rulefmt error without the line and column of
// the wrapped file, which are not the request body's.
func describeRuleError(group string, err error) string {
	var re *rulefmt.Error
	if !errors.As(err, &re) {
		return fmt.Sprintf("rule group %q: %v", group, err)
	}
	cause := error(&re.Err)
	if inner := errors.Unwrap(cause); inner != nil {
		cause = inner
	}
	if re.RuleName == "" {
		return fmt.Sprintf("rule group %q, rule %d: %v", re.Group, re.Rule, cause)
	}
	return fmt.Sprintf("rule group %q, rule %d (%s): %v", re.Group, re.Rule, re.RuleName, cause)
}

// FormatGroup returns a group as the YAML the ruler API stores and answers.
func FormatGroup(rg rulefmt.RuleGroup) ([]byte, error) {
	return marshalYAML(rg)
}

// FormatNamespaces returns stored groups as the YAML the ruler API
// answers a listing with: a map from namespace to its groups.
func FormatNamespaces(rows []state.RuleGroupRow) ([]byte, error) {
	ns := map[string][]rulefmt.RuleGroup{}
	for _, r := range rows {
		var rg rulefmt.RuleGroup
		if err := yaml.Unmarshal([]byte(r.Body), &rg); err != nil {
			return nil, fmt.Errorf("stored rule group %q of namespace %q: %w", r.Name, r.Namespace, err)
		}
		ns[r.Namespace] = append(ns[r.Namespace], rg)
	}
	return marshalYAML(ns)
}

func marshalYAML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
