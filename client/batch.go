package client

import (
	"context"
)

// BatchResult is the server's answer to a batch: one Result per event, in
// order.
type BatchResult struct {
	Message string   `json:"message"`
	Events  []Result `json:"events"`
}

// WriteBatch writes events as one request (a JSON array), retrying as Write
// does. The server stores all of them or, when one is refused, none: a
// RejectedError then names the event by its index. Give every event an ID so
// that a retry after a lost answer stores nothing twice.
func (c *Client) WriteBatch(ctx context.Context, evs []Event) (BatchResult, error) {
	if len(evs) == 0 {
		return BatchResult{Message: "success"}, nil
	}
	var res BatchResult
	err := c.post(ctx, "/change_events", evs, &res)
	return res, err
}
