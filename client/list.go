package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// timeFormat is how the server writes times, and how List sends them.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// ListQuery selects events of the log (GET .../change_events); the server
// lists them newest first.
type ListQuery struct {
	// Start and End bound the event time, inclusive. Zero: from the epoch,
	// and to a day past the server's now.
	Start, End time.Time
	// Name is the event_name to list; empty lists every name.
	Name string
	// Match are PromQL selectors on the events' labels (event_name and
	// event_state included), e.g. {service="checkout"}; an event must match
	// all of them.
	Match []string
	// Limit is the most events of one page, 1 to 1000; 0 lets the server
	// choose (100).
	Limit int
	// Cursor continues an earlier listing: its ListResult.NextCursor.
	Cursor string
}

// ListResult is a page of the listing.
type ListResult struct {
	Events []Logged `json:"events"`
	// NextCursor, when set, lists the next page (ListQuery.Cursor); a page
	// with fewer events than the limit has none.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Logged is an event as the server's log keeps it.
type Logged struct {
	ID    string `json:"id"`
	Name  string `json:"event_name"`
	State string `json:"event_state"`
	// Timestamp is the event time, RFC 3339 in UTC with milliseconds.
	Timestamp string            `json:"timestamp"`
	Value     float64           `json:"value"`
	Labels    map[string]string `json:"labels"`
	Metadata  map[string]any    `json:"metadata"`
	Links     []Link            `json:"links"`
	// ReceivedAt is when the server received the event.
	ReceivedAt string `json:"received_at"`
	// PairID is the id of the paired stop (of a start) or start (of a stop).
	PairID string `json:"pair_id,omitempty"`
	// Duration is the start-to-stop time in seconds, once paired.
	Duration *float64 `json:"duration_seconds,omitempty"`
	// Open is true for a start whose stop has not come.
	Open bool `json:"open"`
	// Impact is what the change did to its services' signals, once
	// scored (docs/impact.md).
	Impact *Impact `json:"impact,omitempty"`
}

// Impact is a change's impact: its verdict (degraded, improved,
// no_change or no_data) and each signal compared after it with before it.
type Impact struct {
	Verdict     string       `json:"verdict"`
	ScoredAt    string       `json:"scored_at"`
	Score       *float64     `json:"score"`
	Provisional bool         `json:"provisional,omitempty"`
	Window      ImpactWindow `json:"window"`
	Signals     []Signal     `json:"signals"`
}

// ImpactWindow is the time compared: before_start to start against start
// to after_end.
type ImpactWindow struct {
	BeforeStart string `json:"before_start"`
	Start       string `json:"start"`
	AfterEnd    string `json:"after_end"`
}

// Signal is one signal of an Impact.
type Signal struct {
	Name           string   `json:"name"`
	Classification string   `json:"classification"`
	Verdict        string   `json:"verdict"`
	Direction      string   `json:"direction"`
	PValue         *float64 `json:"p_value"`
	Before         *float64 `json:"before"`
	After          *float64 `json:"after"`
	Effect         *float64 `json:"effect"`
	BeforePoints   int      `json:"before_points"`
	AfterPoints    int      `json:"after_points"`
	Reason         string   `json:"reason"`
}

// List lists one page of the organization's events matching q, retrying as
// Write does. Page through a long listing with ListResult.NextCursor.
func (c *Client) List(ctx context.Context, q ListQuery) (ListResult, error) {
	v := url.Values{}
	// RFC 3339, not epoch milliseconds: the server reads a number below
	// 1e11 (before March 1973) as seconds.
	if !q.Start.IsZero() {
		v.Set("start", q.Start.UTC().Format(timeFormat))
	}
	if !q.End.IsZero() {
		v.Set("end", q.End.UTC().Format(timeFormat))
	}
	if q.Name != "" {
		v.Set("event_name", q.Name)
	}
	for _, m := range q.Match {
		v.Add("match[]", m)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var res ListResult
	err := c.send(ctx, http.MethodGet, "/change_events", v, nil, &res)
	return res, err
}
