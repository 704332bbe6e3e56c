package alerting

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/events"
)

// Suspect is one change of an alert's context, ranked: an element of
// suspected_changes_json.
type Suspect struct {
	ContextEvent
	// Verdict is the change's impact verdict (degraded, improved,
	// no_change, no_data), or unscored.
	Verdict string `json:"verdict"`
	// Provisional is set when the verdict is over part of the change's
	// after window.
	Provisional bool `json:"provisional,omitempty"`
	// Reason says in one line why the change is where it is.
	Reason string `json:"reason"`
}

// VerdictUnscored is the verdict of a suspect whose impact is not known.
const VerdictUnscored = "unscored"

// versionLabels name a change's release, in the order looked for: the one
// found follows the event name in a suspect's reason.
var versionLabels = []string{"version", "revision", "release", "image_tag", "commit"}

// RankSuspects ranks the change events of an alert active since activeAt
// (evs, with impacts[i] what is known of evs[i]'s impact, nil for
// nothing): the changes that degraded a signal first, the most degraded
// (largest effect size) first among them; then by the labels they share
// with the alert, most first; then by nearness to activeAt. A stop whose
// start is among evs is the same change, and is left out. It does not
// modify its arguments.
func RankSuspects(alert labels.Labels, activeAt time.Time, evs []events.Logged, impacts []*events.Impact) []Suspect {
	starts := map[string]bool{}
	for _, e := range evs {
		if e.State == string(events.StateStart) {
			starts[e.ID] = true
		}
	}
	type ranked struct {
		s        Suspect
		degraded bool
		severity float64
		overlap  int
		distance int64
		seq      int64
	}
	rs := make([]ranked, 0, len(evs))
	at := activeAt.UnixMilli()
	for i, e := range evs {
		if e.State != string(events.StateStart) && e.PairID != "" && starts[e.PairID] {
			continue
		}
		imp := impacts[i]
		r := ranked{
			s:        Suspect{ContextEvent: contextEvent(e), Verdict: VerdictUnscored},
			overlap:  overlap(alert, e.Labels),
			distance: abs(at - e.Time),
			seq:      e.Seq,
		}
		if imp != nil {
			r.s.Verdict, r.s.Provisional = imp.Verdict, imp.Provisional
			r.degraded = imp.Verdict == events.VerdictDegraded
			r.severity = severity(imp)
		}
		r.s.Reason = reason(e, imp, at)
		rs = append(rs, r)
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		switch {
		case a.degraded != b.degraded:
			return a.degraded
		case a.degraded && a.severity != b.severity:
			return a.severity > b.severity
		case a.overlap != b.overlap:
			return a.overlap > b.overlap
		case a.distance != b.distance:
			return a.distance < b.distance
		}
		return a.seq > b.seq
	})
	out := make([]Suspect, len(rs))
	for i, r := range rs {
		out[i] = r.s
	}
	return out
}

// severity is how far the most degraded signal moved: |log effect|, +Inf
// when the effect has no ratio (from nothing, as errors where there were
// none).
func severity(imp *events.Impact) float64 {
	s := 0.0
	for _, si := range imp.Signals {
		if si.Verdict != events.VerdictDegraded {
			continue
		}
		if si.Effect == nil || *si.Effect <= 0 {
			return math.Inf(1)
		}
		s = max(s, math.Abs(math.Log(*si.Effect)))
	}
	return s
}

// overlap counts the labels an event shares, name and value, with an alert.
func overlap(alert labels.Labels, event map[string]string) int {
	n := 0
	for k, v := range event {
		if v != "" && alert.Get(k) == v {
			n++
		}
	}
	return n
}

func abs(d int64) int64 {
	if d < 0 {
		return -d
	}
	return d
}

// reason is a suspect's line:
//
//	deploy checkout-v2: error-ratio ×4.1 (p=0.0003), 4m before the alert
func reason(e events.Logged, imp *events.Impact, at int64) string {
	var b strings.Builder
	b.WriteString(e.Name)
	for _, l := range versionLabels {
		if v := e.Labels[l]; v != "" {
			b.WriteString(" " + v)
			break
		}
	}
	if e.State != string(events.StateStart) {
		b.WriteString(" (" + e.State + ")")
	}
	b.WriteString(": ")
	switch {
	case imp == nil:
		b.WriteString("not scored")
	case imp.Verdict == events.VerdictDegraded:
		b.WriteString(signalList(imp, events.VerdictDegraded))
	case imp.Verdict == events.VerdictImproved:
		b.WriteString("improved " + signalList(imp, events.VerdictImproved))
	case imp.Verdict == events.VerdictNoChange:
		var names []string
		for _, si := range imp.Signals {
			if si.Verdict == events.VerdictNoChange {
				names = append(names, si.Name)
			}
		}
		b.WriteString("no change in " + strings.Join(names, ", "))
	default:
		b.WriteString("no data to score")
	}
	if imp != nil && imp.Provisional {
		b.WriteString(" (so far)")
	}
	b.WriteString(", " + when(at-e.Time))
	return b.String()
}

// signalList lists the signals of a verdict, the most significant first:
// error-ratio ×4.1 (p=0.0003) and latency-p99 ×2.0 (p=0.001).
func signalList(imp *events.Impact, verdict string) string {
	var sis []events.SignalImpact
	for _, si := range imp.Signals {
		if si.Verdict == verdict {
			sis = append(sis, si)
		}
	}
	sort.SliceStable(sis, func(i, j int) bool { return pOf(sis[i]) < pOf(sis[j]) })
	parts := make([]string, 0, len(sis))
	for _, si := range sis {
		var change string
		switch {
		case si.Effect != nil:
			change = "×" + formatRatio(*si.Effect)
		case si.Before != nil && si.After != nil:
			change = fmt.Sprintf("%s → %s", formatValue(*si.Before), formatValue(*si.After))
		}
		p := ""
		if si.PValue != nil {
			p = " (" + formatP(*si.PValue) + ")"
		}
		parts = append(parts, strings.TrimSpace(si.Name+" "+change)+p)
	}
	return strings.Join(parts, " and ")
}

func pOf(si events.SignalImpact) float64 {
	if si.PValue == nil {
		return 1
	}
	return *si.PValue
}

func formatRatio(r float64) string {
	if r >= 1 {
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.2g", r)
}

func formatValue(v float64) string { return fmt.Sprintf("%.3g", v) }

// formatP is p=0.0003, or p<0.0001 below that.
func formatP(p float64) string {
	if p < 0.0001 {
		return "p<0.0001"
	}
	return fmt.Sprintf("p=%.2g", p)
}

// when says how long before the alert something happened.
func when(ms int64) string {
	after := ms < 0
	d := time.Duration(abs(ms)) * time.Millisecond
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	default:
		s = fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	if after {
		return s + " after the alert started"
	}
	return s + " before the alert"
}

// suspectAnnotations returns the two suspect annotations of an alert.
func (f *contextFinder) suspectAnnotations(sus []Suspect, err error) (text, js string) {
	if err != nil {
		return "change events could not be read: " + err.Error(), "[]"
	}
	if len(sus) == 0 {
		return fmt.Sprintf("no suspected changes: no change events sharing %s with this alert in the %s before it started",
			strings.Join(f.opts.MatchLabels, ", "), formatDuration(f.opts.Lookback)), "[]"
	}
	lines := make([]string, 0, len(sus))
	for i, s := range sus {
		lines = append(lines, fmt.Sprintf("%d. %s", i+1, s.Reason))
	}
	b, _ := json.Marshal(sus)
	return strings.Join(lines, "\n"), string(b)
}
