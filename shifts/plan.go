package shifts

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"sort"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/events"
)

// EventName is the name of the change events of traffic shifts.
const EventName = "traffic-shift"

// The labels the detector adds to a series' labels.
const (
	SignalLabel    = "signal"
	DirectionLabel = "direction"
)

// Recorded is a traffic-shift start of the event log.
type Recorded struct {
	ID string
	// Labels are the event's labels.
	Labels labels.Labels
	// Start is the event's time; End, unless Open, when it ended: its
	// stop, or when it reached the events' maximum duration.
	Start, End int64
	Open       bool
}

// Reconciliation is what one run of a signal knows: the series it
// evaluated and the starts of the signal's shifts already in the event log
// (those that may still be open, or have ended within the run).
type Reconciliation struct {
	Org    string
	Signal Signal
	// WindowStart is the time of the run's first point.
	WindowStart int64
	Series      []Series
	Recorded    []Recorded
}

// Plan is what a run writes: each element is one call of the event log's
// Write (a start, a stop, or a start and its stop), in time order.
type Plan struct {
	Writes [][]events.Input
	// Open is how many of the signal's shifts are open once they are
	// written.
	Open int
}

// Reconcile decides what a run writes so that the event log holds each
// shift once, as a start and a stop with deterministic ids:
//
//   - a recorded start that is open gets its stop where the run shows the
//     shift ended, at or after the start (or the run's first point) as a
//     Shift's Stop (see Series.EndAfter), when the run shows that;
//   - a shift the run finds whose start the run sees (not Truncated), and
//     that no recorded start of the same labels overlaps, is written: its
//     start, and its stop when it has ended;
//   - nothing else is written. A shift whose start is before the run and
//     was not recorded (the detector was down as it began, for longer than
//     the lookback) is not reported; a recorded one is not written again
//     when late data moves its start or its end.
//
// Ids are derived from the organization, the labels and the start's time
// (a stop's from its start's id and its time), so a write repeated after a
// crash, or by another process during a lease handover, is stored once.
func Reconcile(r Reconciliation) Plan {
	type target struct {
		series *Series
		dir    Direction
	}
	byKey := map[string]target{}
	for i := range r.Series {
		s := &r.Series[i]
		for _, d := range []Direction{Up, Down} {
			byKey[eventLabels(s.Labels, r.Signal.Name, d).String()] = target{s, d}
		}
	}
	var plan Plan
	// ends are the effective ends of the recorded starts by labels.
	type span struct{ start, end int64 }
	ends := map[string][]span{}
	for _, rec := range r.Recorded {
		key := rec.Labels.String()
		end := rec.End
		if rec.Open {
			end = math.MaxInt64
			if t, ok := byKey[key]; ok {
				if stop, peak, found := t.series.EndAfter(max(rec.Start, r.WindowStart), t.dir); found {
					end = stop.T
					plan.Writes = append(plan.Writes, []events.Input{stopInput(r, rec.ID, rec.Labels, stop, &peak)})
				}
			}
			if end == math.MaxInt64 {
				plan.Open++
			}
		}
		ends[key] = append(ends[key], span{rec.Start, end})
	}
	for i := range r.Series {
		s := &r.Series[i]
		for _, sh := range s.Shifts {
			if sh.Truncated {
				continue
			}
			ls := eventLabels(s.Labels, r.Signal.Name, sh.Direction)
			key := ls.String()
			shEnd := int64(math.MaxInt64)
			if !sh.Open {
				shEnd = sh.Stop.T
			}
			covered := false
			for _, sp := range ends[key] {
				if sp.start < shEnd && sh.Start.T < sp.end {
					covered = true
					break
				}
			}
			if covered {
				continue
			}
			id := startID(r.Org, ls, sh.Start.T)
			w := []events.Input{startInput(r, id, ls, sh.Start)}
			if sh.Open {
				plan.Open++
			} else {
				peak := sh.Peak
				w = append(w, stopInput(r, id, ls, sh.Stop, &peak))
			}
			plan.Writes = append(plan.Writes, w)
		}
	}
	// In time order, a stop before a start at the same time, so that a
	// shift ends before the next of the same labels begins.
	sort.SliceStable(plan.Writes, func(i, j int) bool {
		a, b := plan.Writes[i][0], plan.Writes[j][0]
		if a.Time != b.Time {
			return a.Time < b.Time
		}
		return a.State == events.StateStop && b.State != events.StateStop
	})
	return plan
}

// eventLabels are a series' labels without its metric name, with the
// signal and the direction.
func eventLabels(series labels.Labels, signal string, d Direction) labels.Labels {
	b := labels.NewBuilder(series)
	b.Del(labels.MetricName)
	b.Set(SignalLabel, signal)
	b.Set(DirectionLabel, string(d))
	return b.Labels()
}

// startID is the id of the start of a shift at t with labels ls.
func startID(org string, ls labels.Labels, t int64) string {
	h := sha256.New()
	h.Write([]byte(org))
	h.Write([]byte{0})
	h.Write([]byte(ls.String()))
	h.Write([]byte{0})
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(t)))
	return "shift-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// stopID is the id of the stop at t of the shift whose start is start.
func stopID(start string, t int64) string {
	h := sha256.New()
	h.Write([]byte(start))
	h.Write([]byte{0, 's', 't', 'o', 'p', 0})
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(t)))
	return "shift-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// values are a point's values as event metadata; the ratio is left out
// without a baseline.
type values struct {
	Observed float64  `json:"observed"`
	Baseline float64  `json:"baseline"`
	Ratio    *float64 `json:"ratio,omitempty"`
}

func valuesOf(p Point) values {
	v := values{Observed: p.Observed, Baseline: p.Baseline}
	if r := p.Ratio(); finite(r) {
		v.Ratio = &r
	}
	return v
}

// metadata is the metadata of a shift's events: the values at the event's
// time, the signal's threshold and offset, and, on a stop, the peak.
type metadata struct {
	values
	Threshold      float64 `json:"threshold"`
	BaselineOffset string  `json:"baseline_offset"`
	Peak           *values `json:"peak,omitempty"`
}

func startInput(r Reconciliation, id string, ls labels.Labels, at Point) events.Input {
	return input(r, id, events.StateStart, ls, at, nil)
}

func stopInput(r Reconciliation, startID string, ls labels.Labels, at Point, peak *Point) events.Input {
	return input(r, stopID(startID, at.T), events.StateStop, ls, at, peak)
}

func input(r Reconciliation, id string, state events.State, ls labels.Labels, at Point, peak *Point) events.Input {
	md := metadata{
		values:         valuesOf(at),
		Threshold:      r.Signal.Ratio,
		BaselineOffset: model.Duration(r.Signal.BaselineOffset).String(),
	}
	if peak != nil && finite(peak.Observed) && finite(peak.Baseline) {
		v := valuesOf(*peak)
		md.Peak = &v
	}
	b, err := json.Marshal(md)
	if err != nil {
		// Finite numbers and strings always marshal.
		panic(err)
	}
	return events.Input{
		ID:         id,
		Name:       EventName,
		State:      state,
		Time:       at.T,
		Attributes: ls.Map(),
		Metadata:   b,
	}
}
