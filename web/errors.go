package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/tidemark/tidemark/events"
)

// apiError is an error with the HTTP status it answers with.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, msg string) error { return &apiError{code: code, msg: msg} }

// errorStyle writes an error in the shape its route's clients expect.
type errorStyle func(w http.ResponseWriter, code int, msg string)

// plainError writes {"error": msg}: Tidemark's own routes and Levitate's.
func plainError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// promErrorTypes maps status codes to Prometheus API error types.
var promErrorTypes = map[int]string{
	http.StatusBadRequest:            "bad_data",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusRequestEntityTooLarge: "bad_data",
	http.StatusServiceUnavailable:    "unavailable",
}

// promError writes Prometheus's error envelope, for routes under a
// Prometheus base URL.
func promError(w http.ResponseWriter, code int, msg string) {
	typ, ok := promErrorTypes[code]
	if !ok {
		typ = "internal"
	}
	writeJSON(w, code, map[string]string{"status": "error", "errorType": typ, "error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// apiFunc is a handler of Tidemark's own routes: it returns the value to
// answer with (see withStatus and yamlBody), or an error.
type apiFunc func(r *http.Request) (any, error)

// withStatus is an answer with a status other than 200.
type withStatus struct {
	code int
	body any
}

// yamlBody is an answer written as YAML with status 200.
type yamlBody []byte

// api is the one wrapper of Tidemark's own routes: it writes f's answer as
// JSON (or YAML), and its error in the route's style with the status
// errorStatus maps it to.
func (h *Handler) api(style errorStyle, f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			code, msg := h.errorStatus(r, err)
			if code == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", strconv.Itoa(unavailableRetryAfter))
			}
			style(w, code, msg)
			return
		}
		switch v := v.(type) {
		case yamlBody:
			w.Header().Set("Content-Type", "application/yaml")
			w.WriteHeader(http.StatusOK)
			w.Write(v)
		case withStatus:
			if v.body == nil {
				w.WriteHeader(v.code)
				return
			}
			writeJSON(w, v.code, v.body)
		default:
			writeJSON(w, http.StatusOK, v)
		}
	})
}

// unavailableRetryAfter is the Retry-After, in seconds, of a 503 of
// Tidemark's own routes (storage or engine unavailable, shutting down).
const unavailableRetryAfter = 5

// internalMessage is what a client is told of an internal error: the error
// itself may name files, statements or addresses, so it goes to the log.
const internalMessage = "internal error; the server's log has the details"

// errorStatus maps an error to its status and the message the client
// sees. An internal error (500) is logged and answered with internalMessage.
func (h *Handler) errorStatus(r *http.Request, err error) (int, string) {
	code, msg := errorStatus(err)
	if code == http.StatusInternalServerError {
		h.logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = internalMessage
	}
	return code, msg
}

func errorStatus(err error) (int, string) {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.code, ae.msg
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, tooLarge(mbe.Limit)
	}
	var ie *events.InputError
	var ce *events.ConflictError
	switch {
	case errors.As(err, &ie):
		return http.StatusBadRequest, err.Error()
	case errors.As(err, &ce):
		return http.StatusConflict, err.Error()
	case errors.Is(err, events.ErrUnavailable), errors.Is(err, events.ErrStopping):
		return http.StatusServiceUnavailable, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

func tooLarge(limit int64) string {
	return fmt.Sprintf("the request body is larger than the limit of %d bytes (--web.max-request-bytes)", limit)
}
