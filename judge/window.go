package judge

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/events"
)

// Window is the resolved time range of an analysis and its query step.
type Window struct {
	Start, End time.Time
	Step       time.Duration
	// Event is the start the window was taken from; nil for explicit times.
	Event *events.Logged
}

// Points is the number of evaluation steps of one query over w.
func (w Window) Points() int {
	return int(w.End.Sub(w.Start)/w.Step) + 1
}

// WindowError is a window named by an event that cannot be analyzed: no
// such event, or a window too long or empty (an HTTP 422: the request is
// well formed, the event log does not hold what it names).
type WindowError struct{ msg string }

func (e *WindowError) Error() string { return e.msg }

// Defaults of the window and the step.
const (
	// DefaultMaxWindow bounds the length of a window.
	DefaultMaxWindow = 24 * time.Hour
	// DefaultStep is the step when the request gives none, stretched so
	// that a query has at most autoPoints points.
	DefaultStep = 15 * time.Second
	autoPoints  = 1000
	// MaxPoints is the most points a query may have, Prometheus's limit
	// for range queries.
	MaxPoints = 11000
)

// window resolves the plan's window at now and checks its length and step.
func (s *Service) window(ctx context.Context, org string, p *Plan, now time.Time) (Window, error) {
	c := checker{noun: p.noun, flat: p.flat}
	var w Window
	if p.Window.EventName != "" {
		ev, err := s.latestStart(ctx, org, p.Window, now)
		if err != nil {
			return w, err
		}
		w.Event = ev
		w.Start = time.UnixMilli(ev.Time)
		switch {
		case ev.Duration != nil:
			w.End = w.Start.Add(time.Duration(*ev.Duration * float64(time.Second)))
		case ev.Open:
			w.End = now
		default:
			// Neither stopped nor open: its region ended at the events'
			// maximum duration.
			w.End = w.Start.Add(s.opts.Events.MaxDuration())
		}
		w.End = minTime(w.End, now)
		desc := describeEvent(p.Window)
		if !w.End.After(w.Start) {
			return w, &WindowError{fmt.Sprintf("the window of %s is empty: it starts at %s and ends at %s; analyze it once it has run for a while", desc, formatTime(w.Start), formatTime(w.End))}
		}
		if l := w.End.Sub(w.Start); l > s.opts.MaxWindow {
			return w, &WindowError{fmt.Sprintf("the window of %s is %s long (from %s to %s), longer than the %s an analysis may cover; give explicit window.start and window.end instead",
				desc, model.Duration(l.Round(time.Second)), formatTime(w.Start), formatTime(w.End), model.Duration(s.opts.MaxWindow))}
		}
	} else {
		w.Start = p.Window.Start.At(now).Truncate(time.Millisecond)
		w.End = minTime(p.Window.End.At(now), now).Truncate(time.Millisecond)
		if !w.End.After(w.Start) {
			return w, c.errorf("window.end", quote(formatTime(w.End)), "an end after the start (an end in the future is taken as now)", "is not after window.start %s", formatTime(w.Start))
		}
		if l := w.End.Sub(w.Start); l > s.opts.MaxWindow {
			return w, c.errorf("window.start", quote(formatTime(w.Start)), fmt.Sprintf("a window of at most %s", model.Duration(s.opts.MaxWindow)),
				"makes a window of %s, too long", model.Duration(l.Round(time.Second)))
		}
	}

	length := w.End.Sub(w.Start)
	if p.Step == 0 {
		w.Step = DefaultStep
		if length/DefaultStep >= autoPoints {
			w.Step = (length / (autoPoints - 1)).Truncate(time.Second) + time.Second
		}
		return w, nil
	}
	w.Step = p.Step
	if w.Points() > MaxPoints {
		least := (length / (MaxPoints - 1)).Truncate(time.Second) + time.Second
		return w, c.errorf("step", quote(model.Duration(p.Step).String()), fmt.Sprintf("a step of at least %s for this window (at most %d points per query)", model.Duration(least), MaxPoints),
			"gives %d points over the window of %s", w.Points(), model.Duration(length.Round(time.Second)))
	}
	return w, nil
}

// latestStart finds the newest start of the window's event whose labels
// include the match.
func (s *Service) latestStart(ctx context.Context, org string, wp WindowPlan, now time.Time) (*events.Logged, error) {
	if s.opts.Events == nil {
		return nil, &WindowError{"this server keeps no change events; give explicit window.start and window.end"}
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "event_state", string(events.StateStart))}
	for _, k := range slices.Sorted(maps.Keys(wp.Match)) {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, k, wp.Match[k]))
	}
	res, err := s.opts.Events.List(ctx, events.ListQuery{Org: org, Start: 0, End: now.UnixMilli(), Name: wp.EventName, Matchers: ms, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	if len(res.Events) == 0 {
		return nil, &WindowError{fmt.Sprintf("no start of %s is in the event log; the window names a change event that was started (event_name and labels in match), or explicit times (window.start, window.end)", describeEvent(wp))}
	}
	ev := res.Events[0]
	return &ev, nil
}

// describeEvent names the event of a window in messages.
func describeEvent(wp WindowPlan) string {
	if len(wp.Match) == 0 {
		return fmt.Sprintf("event %q", wp.EventName)
	}
	parts := make([]string, 0, len(wp.Match))
	for _, k := range slices.Sorted(maps.Keys(wp.Match)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, wp.Match[k]))
	}
	return fmt.Sprintf("event %q with labels {%s}", wp.EventName, strings.Join(parts, ", "))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// formatTime writes a time as the event log does: RFC 3339 in UTC with
// milliseconds.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
