package events

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/state"
)

// ListQuery selects events of the log, newest first.
type ListQuery struct {
	Org string
	// Start and End bound the event time (milliseconds, inclusive).
	Start, End int64
	Name       string
	// Matchers select events by label, as a PromQL selector does; the
	// labels include event_name and event_state.
	Matchers []*labels.Matcher
	Limit    int
	// Cursor continues an earlier listing (its NextCursor).
	Cursor string
}

// Logged is an event as the log keeps it.
type Logged struct {
	ID         string            `json:"id"`
	Name       string            `json:"event_name"`
	State      string            `json:"event_state"`
	Timestamp  string            `json:"timestamp"`
	Value      float64           `json:"value"`
	Labels     map[string]string `json:"labels"`
	Metadata   json.RawMessage   `json:"metadata"`
	Links      json.RawMessage   `json:"links"`
	ReceivedAt string            `json:"received_at"`
	// PairID is the id of the paired stop (of a start) or start (of a stop).
	PairID string `json:"pair_id,omitempty"`
	// Duration is the start-to-stop time in seconds, once paired.
	Duration *float64 `json:"duration_seconds,omitempty"`
	// Open is true for a start whose stop has not come.
	Open bool `json:"open"`
	// Impact is what the event did to its signals, once it is scored.
	Impact *Impact `json:"impact,omitempty"`

	// Time is the event time in milliseconds.
	Time int64 `json:"-"`
	// Seq is the event's position in the log.
	Seq int64 `json:"-"`
	// ReceivedMS is when the event was received, in milliseconds.
	ReceivedMS int64 `json:"-"`
}

// ListResult is a page of the listing.
type ListResult struct {
	Events     []Logged `json:"events"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// ParseCursor checks a cursor from a client.
func ParseCursor(s string) (*state.EventCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("cursor %q is not one this server returned", s)
	}
	ts, seq, ok := strings.Cut(string(b), ":")
	c := &state.EventCursor{}
	var e1, e2 error
	c.TS, e1 = strconv.ParseInt(ts, 10, 64)
	c.Seq, e2 = strconv.ParseInt(seq, 10, 64)
	if !ok || e1 != nil || e2 != nil {
		return nil, fmt.Errorf("cursor %q is not one this server returned", s)
	}
	return c, nil
}

func makeCursor(ts, seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ts, 10) + ":" + strconv.FormatInt(seq, 10)))
}

// List returns events of the log matching q, newest first.
func (s *Service) List(ctx context.Context, q ListQuery) (ListResult, error) {
	var before *state.EventCursor
	if q.Cursor != "" {
		c, err := ParseCursor(q.Cursor)
		if err != nil {
			return ListResult{}, err
		}
		before = c
	}
	res := ListResult{Events: []Logged{}}
	// Label matchers are applied here, not in SQL: scan pages until the
	// limit is filled or the log is exhausted.
	page := max(q.Limit, 100)
	var pairSeqs []int64
	var pairOf []int
	for {
		rows, err := s.log.ListEvents(ctx, state.EventQuery{Org: q.Org, Start: q.Start, End: q.End, Name: q.Name, Before: before, Limit: page})
		if err != nil {
			return ListResult{}, err
		}
		for _, row := range rows {
			before = &state.EventCursor{TS: row.TS, Seq: row.Seq}
			lbls, err := rowLabels(row)
			if err != nil {
				return ListResult{}, err
			}
			if !matches(q.Matchers, row, lbls) {
				continue
			}
			res.Events = append(res.Events, logged(row, lbls))
			if row.PairSeq.Valid {
				pairSeqs = append(pairSeqs, row.PairSeq.Int64)
				pairOf = append(pairOf, len(res.Events)-1)
			}
			if len(res.Events) == q.Limit {
				res.NextCursor = makeCursor(row.TS, row.Seq)
				break
			}
		}
		if len(res.Events) == q.Limit || len(rows) < page {
			break
		}
	}
	for i, seq := range pairSeqs {
		if r, err := s.log.EventBySeq(ctx, seq); err == nil {
			res.Events[pairOf[i]].PairID = r.ID
		}
	}
	if err := s.addImpacts(ctx, q.Org, res.Events); err != nil {
		return ListResult{}, err
	}
	return res, nil
}

// ErrNotFound: no event of the organization has the id.
var ErrNotFound = errors.New("no change event has that id")

// Get returns the event id of org as List lists it, or ErrNotFound.
func (s *Service) Get(ctx context.Context, org, id string) (Logged, error) {
	row, err := s.log.EventByID(ctx, org, id)
	if errors.Is(err, state.ErrNotFound) {
		return Logged{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Logged{}, err
	}
	lbls, err := rowLabels(row)
	if err != nil {
		return Logged{}, err
	}
	l := logged(row, lbls)
	if row.PairSeq.Valid {
		if r, err := s.log.EventBySeq(ctx, row.PairSeq.Int64); err == nil {
			l.PairID = r.ID
		}
	}
	evs := []Logged{l}
	if err := s.addImpacts(ctx, org, evs); err != nil {
		return Logged{}, err
	}
	return evs[0], nil
}

// addImpacts sets the impact of the events that are scored.
func (s *Service) addImpacts(ctx context.Context, org string, evs []Logged) error {
	if s.opts.Impacts == nil || len(evs) == 0 {
		return nil
	}
	seqs := make([]int64, 0, len(evs))
	for _, e := range evs {
		if e.State == string(StateStart) {
			seqs = append(seqs, e.Seq)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	rows, err := s.opts.Impacts.Impacts(ctx, org, seqs)
	if err != nil {
		return err
	}
	for i := range evs {
		r, ok := rows[evs[i].Seq]
		if !ok || r.Body == "" {
			continue
		}
		var imp Impact
		if err := json.Unmarshal([]byte(r.Body), &imp); err != nil {
			return fmt.Errorf("event %q: impact %q: %w", evs[i].ID, r.Body, err)
		}
		evs[i].Impact = &imp
	}
	return nil
}

func matches(ms []*labels.Matcher, row state.EventRow, lbls labels.Labels) bool {
	for _, m := range ms {
		var v string
		switch m.Name {
		case "event_name":
			v = row.Name
		case "event_state":
			v = row.State
		default:
			v = lbls.Get(m.Name)
		}
		if !m.Matches(v) {
			return false
		}
	}
	return true
}

func logged(row state.EventRow, lbls labels.Labels) Logged {
	l := Logged{
		ID:         row.ID,
		Name:       row.Name,
		State:      row.State,
		Timestamp:  formatTime(row.TS),
		Value:      row.Value,
		Labels:     lbls.Map(),
		Metadata:   json.RawMessage(row.Metadata),
		Links:      json.RawMessage(row.Links),
		ReceivedAt: formatTime(row.ReceivedAt),
		Open:       row.Open,
		Time:       row.TS,
		Seq:        row.Seq,
		ReceivedMS: row.ReceivedAt,
	}
	if row.DurationMS.Valid {
		d := float64(row.DurationMS.Int64) / 1000
		l.Duration = &d
	}
	return l
}

// Open returns the open starts of an organization that match every
// matcher (as List's), in the order they were written. Open starts are few
// (one per running change), so all of them are read.
func (s *Service) Open(ctx context.Context, org string, ms []*labels.Matcher) ([]Logged, error) {
	rows, err := s.log.OpenEvents(ctx, state.OpenQuery{Orgs: []string{org}})
	if err != nil {
		return nil, err
	}
	out := []Logged{}
	for _, row := range rows {
		lbls, err := rowLabels(row)
		if err != nil {
			return nil, err
		}
		if matches(ms, row, lbls) {
			out = append(out, logged(row, lbls))
		}
	}
	return out, nil
}
