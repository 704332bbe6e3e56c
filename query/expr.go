package query

import (
	"regexp"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// analysis is what an expression allows.
type analysis struct {
	// splittable: every step's value depends on that step alone, not on the
	// query's start or end, so a range query can be evaluated in sub-ranges
	// and the sub-results concatenated.
	splittable bool
	// cacheable: splittable, and a step's value depends only on samples at
	// or before the step (no @ modifier, no negative offset), so an append
	// at time T can change only the steps at or after T.
	cacheable bool
	// names are the metric names the expression reads; nil means it may
	// read any (a selector without an equality matcher on __name__).
	names []string
}

// queryRangeFuncs are the functions whose value depends on the query's
// range rather than on the step (step() does not: every sub-range keeps the
// step).
var queryRangeFuncs = regexp.MustCompile(`(?i)\b(start|end|range)\s*\(`)

// analyse parses qs with p and tells what the expression allows. An
// expression that does not parse allows nothing: the engine reports the
// error.
func analyse(p parser.Parser, qs string) (parser.Expr, analysis) {
	expr, err := p.ParseExpr(qs)
	if err != nil {
		return nil, analysis{}
	}
	// A textual check, since duration expressions (offset range()) are
	// not all reachable through parser.Inspect: a false positive (the
	// text inside a label value) only forgoes splitting.
	a := analysis{splittable: !queryRangeFuncs.MatchString(qs)}
	a.cacheable = a.splittable
	anyName := false
	seen := map[string]bool{}
	selector := func(vs *parser.VectorSelector) {
		if vs.StartOrEnd != 0 {
			a.splittable, a.cacheable = false, false
		}
		if vs.Timestamp != nil || vs.OriginalOffset < 0 || vs.OriginalOffsetExpr != nil {
			a.cacheable = false
		}
		name := ""
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			anyName = true
		} else if !seen[name] {
			seen[name] = true
			a.names = append(a.names, name)
		}
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			selector(n)
		case *parser.SubqueryExpr:
			if n.StartOrEnd != 0 {
				a.splittable, a.cacheable = false, false
			}
			if n.Timestamp != nil || n.OriginalOffset < 0 || n.OriginalOffsetExpr != nil {
				a.cacheable = false
			}
		case *parser.Call:
			if n.Func.Name == "info" {
				// info() reads target_info (or the metric its
				// second argument names) besides its selectors.
				anyName = true
			}
		}
		return nil
	})
	if anyName {
		a.names = nil
	}
	return expr, a
}
