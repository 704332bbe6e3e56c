package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
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
	body, err := json.Marshal(evs)
	if err != nil {
		return BatchResult{}, err
	}
	u := strings.TrimRight(c.opts.URL, "/") + "/api/v4/organizations/" + url.PathEscape(c.opts.Org) + "/change_events"
	var res BatchResult
	backoff := c.opts.MinBackoff
	var last error
	for try := 0; try <= c.opts.Retries; try++ {
		if try > 0 {
			if err := c.sleep(ctx, backoff); err != nil {
				return res, err
			}
			backoff = min(backoff*2, c.opts.MaxBackoff)
		}
		wait, err := c.doBatch(ctx, u, body, &res)
		if err == nil {
			return res, nil
		}
		var rej *RejectedError
		if errors.As(err, &rej) || ctx.Err() != nil {
			return res, err
		}
		last = err
		if wait > 0 {
			backoff = min(wait, c.opts.MaxBackoff)
		} else {
			backoff = backoff/2 + rand.N(backoff/2+1)
		}
	}
	return res, &UnavailableError{Tries: c.opts.Retries + 1, Last: last}
}

// doBatch makes one try of a batch. It returns the server's Retry-After, if
// any.
func (c *Client) doBatch(ctx context.Context, u string, body []byte, res *BatchResult) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, &RejectedError{Message: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, res); err != nil {
			return 0, fmt.Errorf("unreadable answer %q: %w", b, err)
		}
		return 0, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("server answered %d: %s", resp.StatusCode, msg)
	}
	return 0, &RejectedError{Status: resp.StatusCode, Message: msg}
}
