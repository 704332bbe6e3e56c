package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// metric is one row of the results table: a figure for each system.
type metric struct {
	group, name string
	// lower says that a lower figure is better.
	lower bool
	vals  map[string]float64
}

// results collects the figures of a run in the order they were first set.
type results struct {
	rows  []*metric
	notes []string
}

func (r *results) set(group, name string, lower bool, sys string, v float64) {
	for _, m := range r.rows {
		if m.group == group && m.name == name {
			m.vals[sys] = v
			return
		}
	}
	r.rows = append(r.rows, &metric{group: group, name: name, lower: lower, vals: map[string]float64{sys: v}})
}

func (r *results) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(r.notes, n) {
		r.notes = append(r.notes, n)
	}
}

// table renders the results as Markdown: a column per system, then the
// ratio of Tidemark's figure to each peer's.
func (r *results) table(systems []string) string {
	var b strings.Builder
	b.WriteString("| workload | figure | better |")
	for _, s := range systems {
		b.WriteString(" " + s + " |")
	}
	var peers []string
	for _, s := range systems {
		if s != "Tidemark" {
			peers = append(peers, s)
			b.WriteString(" Tidemark / " + s + " |")
		}
	}
	b.WriteString("\n|---|---|---|")
	b.WriteString(strings.Repeat("---:|", len(systems)+len(peers)))
	b.WriteString("\n")
	for _, m := range r.rows {
		better := "higher"
		if m.lower {
			better = "lower"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |", m.group, m.name, better)
		for _, s := range systems {
			v, ok := m.vals[s]
			if !ok {
				b.WriteString(" – |")
				continue
			}
			b.WriteString(" " + format(v) + " |")
		}
		for _, p := range peers {
			t, ok1 := m.vals["Tidemark"]
			v, ok2 := m.vals[p]
			if !ok1 || !ok2 || v == 0 || math.IsNaN(t) || math.IsNaN(v) {
				b.WriteString(" – |")
				continue
			}
			b.WriteString(" " + ratio(t/v) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ratio prints a ratio with two decimals, or two significant digits below 0.1.
func ratio(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.2g", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// format prints a figure with three significant digits and thousands
// separators.
func format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		return thousands(int64(math.Round(v)))
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentile is the p-th percentile (0..100) of ds by the nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}
