package web

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
)

// TestAPIErrors: the one wrapper of Tidemark's routes maps errors to
// statuses in the route's style, and never sends an internal error's text:
// it logs it.
func TestAPIErrors(t *testing.T) {
	var log bytes.Buffer
	h := &Handler{logger: slog.New(slog.NewTextHandler(&log, nil))}
	internal := fmt.Errorf("list events: %w", errors.New(`SQL logic error: no such table: change_events (file /var/lib/tidemark/state.db)`))
	for _, tc := range []struct {
		name  string
		err   error
		style errorStyle
		code  int
		body  string
	}{
		{"internal, plain", internal, plainError, 500, `{"error":"internal error; the server's log has the details"}`},
		{"internal, Prometheus", internal, promError, 500, `{"status":"error","errorType":"internal","error":"internal error; the server's log has the details"}`},
		{"input", &events.InputError{Index: -1, Field: "event_name", Problem: "is missing"}, plainError, 400, `{"error":"field \"event_name\": is missing"}`},
		{"conflict", &events.ConflictError{}, plainError, 409, `{"error":""}`},
		{"unavailable", events.ErrUnavailable, promError, 503, `{"status":"error","errorType":"unavailable","error":"change event storage is unavailable; retry later"}`},
		{"typed", errorf(http.StatusNotFound, "group does not exist"), promError, 404, `{"status":"error","errorType":"not_found","error":"group does not exist"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log.Reset()
			rec := httptest.NewRecorder()
			h.api(tc.style, func(*http.Request) (any, error) { return nil, tc.err }).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			require.Equal(t, tc.code, rec.Code)
			require.JSONEq(t, tc.body, rec.Body.String())
			if tc.code == 500 {
				require.NotContains(t, rec.Body.String(), "state.db")
				require.Contains(t, log.String(), "no such table", "the internal error is logged")
			} else {
				require.Empty(t, log.String())
			}
		})
	}
	rec := httptest.NewRecorder()
	h.api(plainError, func(*http.Request) (any, error) {
		return withStatus{code: 202, body: map[string]string{"status": "success"}}, nil
	}).ServeHTTP(rec, httptest.NewRequest("POST", "/x", nil))
	require.Equal(t, 202, rec.Code)
	require.JSONEq(t, `{"status":"success"}`, rec.Body.String())
}
