// Package client talks to a Tidemark server's change-event and analysis
// APIs, retrying what can be retried: the client for CI jobs, rollout job
// steps and tests. It depends on the standard library only, so that a
// program writing events does not build the server in; the wire types it
// declares are checked against the server's in its tests.
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
	"strconv"
	"strings"
	"time"
)

// Options configures a Client.
type Options struct {
	// URL is the server's address, e.g. http://tidemark:9470.
	URL   string
	Org   string
	Token string
	// Retries is how many times a retryable failure (429, 5xx, a network
	// error) is retried.
	Retries int
	// MinBackoff and MaxBackoff bound the wait between tries; it doubles
	// from MinBackoff, with jitter, and a Retry-After header takes precedence.
	MinBackoff, MaxBackoff time.Duration
	HTTPClient             *http.Client
}

// Client writes and lists change events and asks for analyses. It is safe
// for concurrent use.
type Client struct {
	opts  Options
	sleep func(context.Context, time.Duration) error
}

// New returns a client.
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("no server URL: set --url or TIDEMARK_URL")
	}
	if _, err := url.Parse(opts.URL); err != nil {
		return nil, fmt.Errorf("server URL %q: %w", opts.URL, err)
	}
	if opts.Org == "" {
		return nil, errors.New("no organization: set --org or TIDEMARK_ORG")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	return &Client{opts: opts, sleep: sleepCtx}, nil
}

// Event is a change event to write; see the server's API documentation.
type Event struct {
	Name       string            `json:"event_name"`
	State      string            `json:"event_state"`
	Timestamp  string            `json:"timestamp,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	ID         string            `json:"id,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Links      []Link            `json:"links,omitempty"`
}

// Link is a link kept with an event.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Result is the server's answer to one event.
type Result struct {
	Message   string `json:"message"`
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Duplicate bool   `json:"duplicate"`
}

// RejectedError is a request the server refused for good (a 4xx other
// than 429): retrying it would not help.
type RejectedError struct {
	Status  int
	Message string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("rejected by the server (%d): %s", e.Status, e.Message)
}

// UnavailableError is a retryable failure that persisted through all tries.
type UnavailableError struct {
	Tries int
	Last  error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("gave up after %d tries: %v", e.Tries, e.Last)
}

func (e *UnavailableError) Unwrap() error { return e.Last }

// Write writes one event. Give it an ID when it may be retried, so that a
// retry after a lost answer is not stored twice.
func (c *Client) Write(ctx context.Context, ev Event) (Result, error) {
	var res Result
	err := c.post(ctx, "/change_events", ev, &res)
	return res, err
}

// post sends v as JSON to the organization's path (see send).
func (c *Client) post(ctx context.Context, path string, v, res any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.send(ctx, http.MethodPost, path, nil, body, res)
}

// maxAnswerBytes bounds an answer read from the server.
const maxAnswerBytes = 16 << 20

// send makes a request to path under the organization's API
// (/api/v4/organizations/{org}) and decodes a 200 answer into res. It is the
// client's one retry loop: 429, 5xx and network errors are retried with
// doubling, jittered backoff, or after the server's Retry-After (seconds or
// an HTTP date); another 4xx is a *RejectedError at once; retries used up,
// or the context ending while waiting for the next try, give an
// *UnavailableError.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte, res any) error {
	u := strings.TrimRight(c.opts.URL, "/") + "/api/v4/organizations/" + url.PathEscape(c.opts.Org) + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	backoff := c.opts.MinBackoff
	var last error
	for try := 0; try <= c.opts.Retries; try++ {
		if try > 0 {
			if err := c.sleep(ctx, backoff); err != nil {
				return &UnavailableError{Tries: try, Last: last}
			}
			backoff = min(backoff*2, c.opts.MaxBackoff)
		}
		wait, err := c.do(ctx, method, u, body, res)
		if err == nil {
			return nil
		}
		var rej *RejectedError
		if errors.As(err, &rej) {
			return err
		}
		last = err
		if ctx.Err() != nil {
			return &UnavailableError{Tries: try + 1, Last: last}
		}
		if wait > 0 {
			backoff = min(wait, c.opts.MaxBackoff)
		} else {
			// Full jitter keeps many CI jobs from retrying in step.
			backoff = backoff/2 + rand.N(backoff/2+1)
		}
	}
	return &UnavailableError{Tries: c.opts.Retries + 1, Last: last}
}

// do makes one try. It returns the server's Retry-After, if any.
func (c *Client) do(ctx context.Context, method, u string, body []byte, res any) (time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, &RejectedError{Message: err.Error()}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return 0, fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, res); err != nil {
			return 0, fmt.Errorf("unreadable answer %q: %w", truncate(b, 200), err)
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

// truncate shortens an answer quoted in an error.
func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(b[:n:n], "..."...)
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
