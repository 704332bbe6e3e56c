package impact

import (
	"fmt"
	"math"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tidemark/tidemark/judge"
)

// Settings say how an organization's changes are scored: which labels tie
// an event to its signals, the windows compared, and the signals. Check
// fills in the defaults and compiles the queries; only checked Settings
// score.
type Settings struct {
	// MatchLabels are the labels an event shares with its signals: those
	// it has become the matchers of the queries. An event with none of
	// them is not scored.
	MatchLabels []string
	// Before is the baseline window before the change; After how long
	// after a start (or point event) it is scored. A stop sooner than
	// After ends the after window, but not before MinAfter.
	Before, After, MinAfter time.Duration
	// Step is the finest query resolution. A signal's points are spaced by
	// its longest range selector when that is longer: points closer than
	// their range share samples, and the test counts them as independent.
	Step time.Duration
	// Delay is how long scoring waits after the after window for late
	// samples (scrape intervals, remote-write queues).
	Delay time.Duration
	// Confidence is the chance of not flagging a change that did nothing,
	// across all of an event's signals (each signal is tested at
	// 1-(1-Confidence)/n, n being the signals with data: Bonferroni).
	Confidence float64
	// MinPoints is the fewest values a window may hold for its signal to
	// be compared; with fewer the signal has no data.
	MinPoints int
	// Signals are compared in order. None: nothing is scored.
	Signals []Signal
}

// Signal is one golden signal of what an event changed.
type Signal struct {
	Name string
	// Query is a PromQL expression as a text/template: {{.Matchers}} is
	// the event's match labels as matchers (service="checkout",env="prod"),
	// {{.Labels.name}} one of its labels.
	Query string
	// Direction is the change that degrades: increase (latency, errors),
	// decrease (throughput) or either.
	Direction judge.Direction
	// Weight is the signal's share in the score (0: 1).
	Weight float64
	// AllowedIncrease is the smallest effect size (mean after / mean
	// before) that counts as higher, AllowedDecrease the largest that
	// counts as lower: smaller shifts are no change, however significant.
	AllowedIncrease, AllowedDecrease float64

	tmpl *template.Template
	// spacing is the time between the signal's points.
	spacing time.Duration
}

// Defaults of Settings.
const (
	DefaultBefore          = 30 * time.Minute
	DefaultAfter           = 10 * time.Minute
	DefaultMinAfter        = 5 * time.Minute
	DefaultStep            = 15 * time.Second
	DefaultDelay           = 30 * time.Second
	DefaultConfidence      = 0.98
	DefaultMinPoints       = 5
	DefaultAllowedIncrease = 1.25
	DefaultAllowedDecrease = 0.8
)

// DefaultMatchLabels are the labels that tie an event to its signals.
func DefaultMatchLabels() []string { return []string{"service", "namespace", "env", "app"} }

// The default signals cover the Prometheus client libraries' conventions
// (http_requests_total{code}, http_request_duration_seconds) and
// OpenTelemetry's semantic conventions as Prometheus names them
// (http_server_request_duration_seconds, http_response_status_code). The
// error ratio is 0, not absent, where there is traffic but no 5xx series:
// most services only have one once they have failed.
const (
	defaultErrorRatio = `(
  sum(rate(http_requests_total{code=~"5..",{{.Matchers}}}[1m]))
  or sum(rate(http_server_request_duration_seconds_count{http_response_status_code=~"5..",{{.Matchers}}}[1m]))
  or vector(0)
)
/
(
  sum(rate(http_requests_total{ {{.Matchers}} }[1m]))
  or sum(rate(http_server_request_duration_seconds_count{ {{.Matchers}} }[1m]))
)`
	defaultLatencyP99 = `histogram_quantile(0.99,
  sum by (le) (rate(http_request_duration_seconds_bucket{ {{.Matchers}} }[1m]))
  or sum by (le) (rate(http_server_request_duration_seconds_bucket{ {{.Matchers}} }[1m]))
)`
	defaultLatencyMean = `(
  sum(rate(http_request_duration_seconds_sum{ {{.Matchers}} }[1m]))
  or sum(rate(http_server_request_duration_seconds_sum{ {{.Matchers}} }[1m]))
)
/
(
  sum(rate(http_request_duration_seconds_count{ {{.Matchers}} }[1m]))
  or sum(rate(http_server_request_duration_seconds_count{ {{.Matchers}} }[1m]))
)`
)

// DefaultSignals are the signals of Settings that name none.
func DefaultSignals() []Signal {
	return []Signal{
		{Name: "error-ratio", Query: defaultErrorRatio, Direction: judge.DirectionIncrease},
		{Name: "latency-p99", Query: defaultLatencyP99, Direction: judge.DirectionIncrease},
		{Name: "latency-mean", Query: defaultLatencyMean, Direction: judge.DirectionIncrease},
	}
}

// DefaultSettings are the checked settings of an organization that sets
// none.
func DefaultSettings() Settings {
	s := Settings{}
	if err := s.Check(); err != nil {
		panic(err) // The defaults are tested.
	}
	return s
}

// templateData is what a signal's query template sees.
type templateData struct {
	Matchers string
	Labels   map[string]string
}

// Check fills in the defaults (nil MatchLabels and Signals included; an
// empty list stays empty) and compiles every signal's query. An error
// names the field and the signal, and for a query that does not parse,
// Prometheus's error.
func (s *Settings) Check() error {
	if s.MatchLabels == nil {
		s.MatchLabels = DefaultMatchLabels()
	}
	for i, l := range s.MatchLabels {
		if !model.LegacyValidation.IsValidLabelName(l) {
			return fmt.Errorf("match_labels[%d]: %q is not accepted; accepted: a label name [a-zA-Z_][a-zA-Z0-9_]*", i, l)
		}
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"before", &s.Before, DefaultBefore},
		{"after", &s.After, DefaultAfter},
		{"min_after", &s.MinAfter, DefaultMinAfter},
		{"step", &s.Step, DefaultStep},
		{"delay", &s.Delay, DefaultDelay},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			return fmt.Errorf("%s: %s is not accepted; accepted: a positive duration", d.field, model.Duration(*d.v))
		}
	}
	if s.Step < time.Second {
		return fmt.Errorf("step: %s is not accepted; accepted: 1s or more", model.Duration(s.Step))
	}
	if s.MinAfter > s.After {
		return fmt.Errorf("min_after: %s is longer than after (%s); accepted: at most after", model.Duration(s.MinAfter), model.Duration(s.After))
	}
	if s.Confidence == 0 {
		s.Confidence = DefaultConfidence
	}
	if !(s.Confidence > 0 && s.Confidence < 1) {
		return fmt.Errorf("confidence: %v is not accepted; accepted: a number strictly between 0 and 1, such as 0.98", s.Confidence)
	}
	if s.MinPoints == 0 {
		s.MinPoints = DefaultMinPoints
	}
	if s.MinPoints < 2 {
		return fmt.Errorf("min_points: %d is not accepted; accepted: 2 or more", s.MinPoints)
	}
	if s.Signals == nil {
		s.Signals = DefaultSignals()
	}
	seen := map[string]bool{}
	for i := range s.Signals {
		sig := &s.Signals[i]
		where := fmt.Sprintf("signals[%d]", i)
		if sig.Name == "" {
			return fmt.Errorf("%s.name: missing; accepted: a name such as error-ratio", where)
		}
		where = fmt.Sprintf("signals[%d] (%s)", i, sig.Name)
		if seen[sig.Name] {
			return fmt.Errorf("%s.name: %q is used twice; accepted: a name per signal", where, sig.Name)
		}
		seen[sig.Name] = true
		if err := sig.compile(s.Step); err != nil {
			return fmt.Errorf("%s.%w", where, err)
		}
	}
	return nil
}

// compile parses the query template and, with sample matchers, the PromQL
// it makes, and sets the defaults of the signal's thresholds.
func (sig *Signal) compile(step time.Duration) error {
	if strings.TrimSpace(sig.Query) == "" {
		return fmt.Errorf("query: missing; accepted: a PromQL expression with {{.Matchers}} where the event's labels go")
	}
	if sig.Direction < judge.DirectionEither || sig.Direction > judge.DirectionDecrease {
		return fmt.Errorf("direction: %d is not accepted; accepted: increase, decrease or either", int(sig.Direction))
	}
	if sig.Weight == 0 {
		sig.Weight = 1
	}
	if !(sig.Weight > 0) || math.IsInf(sig.Weight, 0) {
		return fmt.Errorf("weight: %v is not accepted; accepted: a positive number", sig.Weight)
	}
	if sig.AllowedIncrease == 0 {
		sig.AllowedIncrease = DefaultAllowedIncrease
	}
	if sig.AllowedDecrease == 0 {
		sig.AllowedDecrease = DefaultAllowedDecrease
	}
	if !(sig.AllowedIncrease >= 1) || math.IsInf(sig.AllowedIncrease, 0) {
		return fmt.Errorf("allowed_increase: %v is not accepted; accepted: a ratio of 1 or more, such as 1.25", sig.AllowedIncrease)
	}
	if !(sig.AllowedDecrease > 0 && sig.AllowedDecrease <= 1) {
		return fmt.Errorf("allowed_decrease: %v is not accepted; accepted: a ratio above 0 and at most 1, such as 0.8", sig.AllowedDecrease)
	}
	t, err := template.New(sig.Name).Option("missingkey=zero").Parse(sig.Query)
	if err != nil {
		return fmt.Errorf("query: not a template: %w", err)
	}
	sig.tmpl = t
	q, err := sig.render(labels.FromStrings("service", "example"), []string{"service"})
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		return fmt.Errorf("query: does not parse with service=\"example\" as {{.Matchers}}: %w; the query was: %s", err, q)
	}
	switch expr.Type() {
	case parser.ValueTypeVector, parser.ValueTypeScalar:
	case parser.ValueTypeMatrix:
		return fmt.Errorf("query: is a range vector; accepted: an expression of instant vector or scalar type")
	default:
		return fmt.Errorf("query: is a %s; accepted: an expression of instant vector or scalar type", expr.Type())
	}
	sig.spacing = max(step, longestRange(expr))
	return nil
}

// render is the signal's query for an event with labels lset.
func (sig *Signal) render(lset labels.Labels, matchLabels []string) (string, error) {
	var b strings.Builder
	if err := sig.tmpl.Execute(&b, templateData{Matchers: Matchers(lset, matchLabels), Labels: lset.Map()}); err != nil {
		return "", fmt.Errorf("template: %w", err)
	}
	return b.String(), nil
}

// Spacing is the time between the signal's points.
func (sig *Signal) Spacing() time.Duration { return sig.spacing }

// longestRange is the longest range of the range selectors and subqueries
// of expr.
func longestRange(expr parser.Expr) time.Duration {
	var longest time.Duration
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.MatrixSelector:
			longest = max(longest, n.Range)
		case *parser.SubqueryExpr:
			longest = max(longest, n.Range)
		}
		return nil
	})
	return longest
}

// Matchers are the event's labels among matchLabels as PromQL matchers, in
// the order of matchLabels: service="checkout",env="prod".
func Matchers(lset labels.Labels, matchLabels []string) string {
	var parts []string
	for _, name := range matchLabels {
		if v := lset.Get(name); v != "" {
			parts = append(parts, labels.MustNewMatcher(labels.MatchEqual, name, v).String())
		}
	}
	return strings.Join(parts, ",")
}

// Scored reports whether an event with labels lset is scored: it has one of
// the match labels, and there are signals.
func (s *Settings) Scored(lset labels.Labels) bool {
	if len(s.Signals) == 0 {
		return false
	}
	for _, name := range s.MatchLabels {
		if lset.Get(name) != "" {
			return true
		}
	}
	return false
}
