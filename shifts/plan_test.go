package shifts

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
)

const minute = int64(60_000)

// t0 is a time on every grid the tests use.
var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).UnixMilli()

var testSignal = Signal{Name: "request-rate", Ratio: 2, For: 5 * time.Minute, BaselineOffset: 7 * 24 * time.Hour}

// history is observed values, one per minute from t0, against a baseline
// of 10; NaN is no data.
type history []float64

// window evaluates the part of h a run at the end of minute end (of
// lookback minutes) sees, with the data known up to minute known.
func (h history) window(ls labels.Labels, end, lookback, known int) (Params, []Series) {
	p := Params{Start: t0 + int64(end-lookback)*minute, Step: minute, Points: lookback + 1, Ratio: testSignal.Ratio, For: testSignal.For.Milliseconds()}
	obs := promql.Series{Metric: ls}
	base := promql.Series{Metric: ls}
	for i := end - lookback; i <= end; i++ {
		t := t0 + int64(i)*minute
		base.Floats = append(base.Floats, promql.FPoint{T: t, F: 10})
		if i >= 0 && i < len(h) && i <= known && !math.IsNaN(h[i]) {
			obs.Floats = append(obs.Floats, promql.FPoint{T: t, F: h[i]})
		}
	}
	return p, Detect(promql.Matrix{obs}, promql.Matrix{base}, p)
}

// flat is n minutes of v.
func flat(v float64, n int) history {
	h := make(history, n)
	for i := range h {
		h[i] = v
	}
	return h
}

func join(hs ...history) history {
	var out history
	for _, h := range hs {
		out = append(out, h...)
	}
	return out
}

var svcA = labels.FromStrings("service", "a")

func upLabels(ls labels.Labels) labels.Labels { return eventLabels(ls, testSignal.Name, Up) }

// written is one event of a plan, for comparison.
type written struct {
	ID    string
	State events.State
	Min   int64 // minutes since t0
}

func flatten(p Plan) [][]written {
	out := [][]written{}
	for _, w := range p.Writes {
		var ws []written
		for _, in := range w {
			ws = append(ws, written{ID: in.ID, State: in.State, Min: (in.Time - t0) / minute})
		}
		out = append(out, ws)
	}
	return out
}

func TestReconcile(t *testing.T) {
	surge := join(flat(10, 20), flat(30, 15), flat(10, 40)) // up from minute 20 to 35
	startA := startID("acme", upLabels(svcA), t0+20*minute)
	stopA := stopID(startA, t0+35*minute)
	for _, tc := range []struct {
		name       string
		h          history
		end, known int
		recorded   []Recorded
		want       [][]written
		open       int
	}{
		{
			name: "a new shift that ended: its start and stop in one write",
			h:    surge, end: 60, known: 60,
			want: [][]written{{{startA, events.StateStart, 20}, {stopA, events.StateStop, 35}}},
		},
		{
			name: "a new shift still going: its start",
			h:    surge, end: 30, known: 30,
			want: [][]written{{{startA, events.StateStart, 20}}},
			open: 1,
		},
		{
			name: "its start recorded, still going: nothing",
			h:    surge, end: 32, known: 32,
			recorded: []Recorded{{ID: startA, Labels: upLabels(svcA), Start: t0 + 20*minute, Open: true}},
			want:     [][]written{},
			open:     1,
		},
		{
			name: "its start recorded, now ended: the stop, with the id a single write gives it",
			h:    surge, end: 40, known: 40,
			recorded: []Recorded{{ID: startA, Labels: upLabels(svcA), Start: t0 + 20*minute, Open: true}},
			want:     [][]written{{{stopA, events.StateStop, 35}}},
		},
		{
			name: "recorded with its stop: nothing",
			h:    surge, end: 60, known: 60,
			recorded: []Recorded{{ID: startA, Labels: upLabels(svcA), Start: t0 + 20*minute, End: t0 + 35*minute}},
			want:     [][]written{},
		},
		{
			name: "its start before the run, recorded, still going: no second start",
			h:    join(flat(10, 20), flat(30, 100)), end: 90, known: 90,
			recorded: []Recorded{{ID: startA, Labels: upLabels(svcA), Start: t0 + 20*minute, Open: true}},
			want:     [][]written{},
			open:     1,
		},
		{
			name: "its start before the run, recorded, now ended: the stop",
			h:    join(flat(10, 20), flat(30, 80), flat(10, 20)), end: 110, known: 110,
			recorded: []Recorded{{ID: startA, Labels: upLabels(svcA), Start: t0 + 20*minute, Open: true}},
			want:     [][]written{{{stopID(startA, t0+100*minute), events.StateStop, 100}}},
		},
		{
			name: "its start before the run and never recorded: nothing",
			h:    join(flat(10, 20), flat(30, 80), flat(10, 20)), end: 110, known: 110,
			want: [][]written{},
		},
		{
			name: "a recorded start whose data now says it ended: stopped at its first point back",
			h:    join(flat(10, 20), flat(10, 4), flat(30, 1), flat(10, 40)), end: 60, known: 60,
			recorded: []Recorded{{ID: "manual", Labels: upLabels(svcA), Start: t0 + 24*minute, Open: true}},
			want:     [][]written{{{stopID("manual", t0+25*minute), events.StateStop, 25}}},
		},
		{
			name: "an earlier shift recorded and ended, a new one after it: the new one",
			h:    join(flat(10, 10), flat(30, 10), flat(10, 10), flat(30, 10), flat(10, 20)), end: 60, known: 60,
			recorded: []Recorded{{ID: "earlier", Labels: upLabels(svcA), Start: t0 + 10*minute, End: t0 + 20*minute}},
			want: [][]written{{
				{startID("acme", upLabels(svcA), t0+30*minute), events.StateStart, 30},
				{stopID(startID("acme", upLabels(svcA), t0+30*minute), t0+40*minute), events.StateStop, 40},
			}},
		},
		{
			name: "an open start the run's data ends before a new shift: the stop first",
			h:    join(flat(10, 30), flat(30, 10), flat(10, 20)), end: 60, known: 60,
			recorded: []Recorded{{ID: "stale", Labels: upLabels(svcA), Start: t0 + 5*minute, Open: true}},
			want: [][]written{
				{{stopID("stale", t0+5*minute), events.StateStop, 5}},
				{
					{startID("acme", upLabels(svcA), t0+30*minute), events.StateStart, 30},
					{stopID(startID("acme", upLabels(svcA), t0+30*minute), t0+40*minute), events.StateStop, 40},
				},
			},
		},
		{
			name: "a start ended by the maximum duration, the shift still going: nothing",
			h:    join(flat(10, 20), flat(30, 100)), end: 90, known: 90,
			recorded: []Recorded{{ID: startA, Labels: upLabels(svcA), Start: t0 + 20*minute, End: t0 + 80*minute}},
			want:     [][]written{},
		},
		{
			name: "an open start of a series the run lacks: left open",
			h:    surge, end: 60, known: 60,
			recorded: []Recorded{
				{ID: startA, Labels: upLabels(svcA), Start: t0 + 20*minute, End: t0 + 35*minute},
				{ID: "gone", Labels: upLabels(labels.FromStrings("service", "gone")), Start: t0 + 30*minute, Open: true},
			},
			want: [][]written{},
			open: 1,
		},
		{
			name: "no data since the shift: still open",
			h:    surge, end: 60, known: 30,
			recorded: []Recorded{{ID: startA, Labels: upLabels(svcA), Start: t0 + 20*minute, Open: true}},
			want:     [][]written{},
			open:     1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, series := tc.h.window(svcA, tc.end, 60, tc.known)
			plan := Reconcile(Reconciliation{Org: "acme", Signal: testSignal, WindowStart: p.Start, Series: series, Recorded: tc.recorded})
			require.Equal(t, tc.want, flatten(plan))
			require.Equal(t, tc.open, plan.Open)
		})
	}
}

func TestReconcileEvents(t *testing.T) {
	ls := labels.FromStrings("__name__", "ignored", "service", "a", "signal", "overwritten")
	h := join(flat(10, 20), flat(30, 15), flat(10, 40))
	p, series := h.window(ls, 60, 60, 60)
	plan := Reconcile(Reconciliation{Org: "acme", Signal: testSignal, WindowStart: p.Start, Series: series})
	require.Len(t, plan.Writes, 1)
	start, stop := plan.Writes[0][0], plan.Writes[0][1]
	want := map[string]string{"service": "a", "signal": "request-rate", "direction": "up"}
	require.Equal(t, want, start.Attributes)
	require.Equal(t, want, stop.Attributes)
	require.Equal(t, EventName, start.Name)
	require.JSONEq(t, `{"observed":30,"baseline":10,"ratio":3,"threshold":2,"baseline_offset":"1w"}`, string(start.Metadata))
	require.JSONEq(t, `{"observed":10,"baseline":10,"ratio":1,"threshold":2,"baseline_offset":"1w",
		"peak":{"observed":30,"baseline":10,"ratio":3}}`, string(stop.Metadata))

	// The events pass the API's validation and pair.
	evs, err := events.ValidateAll(plan.Writes[0], time.UnixMilli(t0+60*minute), events.DefaultLimits)
	require.NoError(t, err)
	require.Equal(t, evs[0].Labels, evs[1].Labels)

	// Ids depend on the organization, the labels and the time.
	require.NotEqual(t, startID("acme", upLabels(svcA), t0), startID("other", upLabels(svcA), t0))
	require.NotEqual(t, startID("acme", upLabels(svcA), t0), startID("acme", eventLabels(svcA, "request-rate", Down), t0))
	require.NotEqual(t, startID("acme", upLabels(svcA), t0), startID("acme", upLabels(svcA), t0+minute))
	require.NotEqual(t, startID("acme", upLabels(svcA), t0), stopID(startID("acme", upLabels(svcA), t0), t0))
}

// fakeLog is an event log as the detector sees it: each id stored once, a
// stop pairing the open start of the same labels.
type fakeLog struct {
	byID   map[string]bool
	starts []*Recorded
	stops  []written
	// lone counts the stops that found no open start; second the starts
	// written while one of the same labels was open.
	lone, second int
}

func newFakeLog() *fakeLog { return &fakeLog{byID: map[string]bool{}} }

func (l *fakeLog) apply(plan Plan) {
	for _, w := range plan.Writes {
		for _, in := range w {
			if l.byID[in.ID] {
				continue
			}
			l.byID[in.ID] = true
			ls := labels.FromMap(in.Attributes)
			var open *Recorded
			for _, r := range l.starts {
				if r.Open && labels.Equal(r.Labels, ls) {
					open = r
				}
			}
			switch in.State {
			case events.StateStart:
				if open != nil {
					l.second++
				}
				l.starts = append(l.starts, &Recorded{ID: in.ID, Labels: ls, Start: in.Time, Open: true})
			case events.StateStop:
				if open == nil {
					l.lone++
					continue
				}
				open.Open, open.End = false, in.Time
				l.stops = append(l.stops, written{ID: in.ID, State: events.StateStop, Min: (in.Time - t0) / minute})
			}
		}
	}
}

func (l *fakeLog) recorded() []Recorded {
	out := []Recorded{}
	for _, r := range l.starts {
		out = append(out, *r)
	}
	return out
}

// spans are the shifts of the log as "start-stop" in minutes since t0.
func (l *fakeLog) spans() []string {
	out := []string{}
	for _, r := range l.starts {
		s := fmt.Sprintf("%s %d-", r.Labels.Get(DirectionLabel), (r.Start-t0)/minute)
		if !r.Open {
			s += fmt.Sprint((r.End - t0) / minute)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// TestReconcileRuns runs the detector over a moving window, as its loop
// does, with the data arriving late, runs skipped (a restart, downtime) and
// every run's writes applied to one log: each shift is stored once, a
// start and a stop.
func TestReconcileRuns(t *testing.T) {
	h := join(flat(10, 70), flat(30, 15), flat(10, 60), flat(3, 40), flat(10, 30), flat(30, 90), flat(10, 60))
	// up 70-85, down 145-185, up 215-305
	want240 := []string{"down 145-185", "up 215-", "up 70-85"}
	wantDone := []string{"down 145-185", "up 215-305", "up 70-85"}
	for _, tc := range []struct {
		name string
		// lag is how many minutes late the data of a run is; skip whether
		// a run does not happen.
		lag  func(run int) int
		skip func(run int) bool
	}{
		{name: "every minute, data on time"},
		{name: "data late by up to 7 minutes", lag: func(run int) int { return run * 7 % 8 }},
		{name: "down during the first shift's start", skip: func(run int) bool { return run >= 72 && run < 100 }},
		{name: "down for 50 minutes during the last shift", skip: func(run int) bool { return run >= 230 && run < 280 }},
		{name: "down as the last shift ends", skip: func(run int) bool { return run >= 300 && run < 340 }},
		{name: "a run every 7 minutes", skip: func(run int) bool { return run%7 != 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newFakeLog()
			for end := 0; end < len(h)+5; end++ {
				if tc.skip != nil && tc.skip(end) {
					continue
				}
				known := end
				if tc.lag != nil {
					known -= tc.lag(end)
				}
				p, series := h.window(svcA, end, 60, known)
				plan := Reconcile(Reconciliation{Org: "acme", Signal: testSignal, WindowStart: p.Start, Series: series, Recorded: log.recorded()})
				log.apply(plan)
				if end == 240 {
					require.Equal(t, want240, log.spans(), "at minute 240: the last shift open")
				}
			}
			require.Equal(t, wantDone, log.spans())
			require.Zero(t, log.lone, "stops without a start")
			require.Zero(t, log.second, "second starts")
		})
	}
}

func TestReconcileMetadataIsJSON(t *testing.T) {
	// A stop at a point with a baseline of 0 and no traffic has no ratio.
	p := Params{Start: t0, Step: minute, Points: 20, Ratio: 2, For: 5 * minute}
	obs := promql.Series{Metric: svcA}
	base := promql.Series{Metric: svcA}
	for i := range 20 {
		o, b := 30.0, 10.0
		if i >= 10 {
			o, b = 0, 0
		}
		obs.Floats = append(obs.Floats, promql.FPoint{T: t0 + int64(i)*minute, F: o})
		base.Floats = append(base.Floats, promql.FPoint{T: t0 + int64(i)*minute, F: b})
	}
	series := Detect(promql.Matrix{obs}, promql.Matrix{base}, p)
	plan := Reconcile(Reconciliation{Org: "acme", Signal: testSignal, WindowStart: p.Start, Series: series,
		Recorded: []Recorded{{ID: "x", Labels: upLabels(svcA), Start: t0 - 10*minute, Open: true}}})
	require.Len(t, plan.Writes, 1)
	var md map[string]any
	require.NoError(t, json.Unmarshal(plan.Writes[0][0].Metadata, &md))
	require.NotContains(t, md, "ratio")
	require.Equal(t, 0.0, md["observed"])
}
