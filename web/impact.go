package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/prometheus/promql"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/impact"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// The routes of single events and their impact (docs/impact.md):
//
//	GET  /api/v4/organizations/{org}/change_events/{id}   one event as listed, with its impact
//	POST /api/v4/organizations/{org}/impact               {"event_id": ...}: score it now

// ImpactScorer scores an event on demand; *impact.Service implements it.
type ImpactScorer interface {
	ScoreEvent(ctx context.Context, org, id string) (*events.Impact, error)
}

// registerImpact adds the routes.
func (h *Handler) registerImpact() {
	h.handle("GET /api/v4/organizations/{org}/change_events/{id}", h.auth.require(state.ScopeRead, plainError, h.gated(h.api(plainError, h.getEvent))))
	if h.opts.Impact != nil {
		h.handle("POST /api/v4/organizations/{org}/impact", h.auth.require(state.ScopeWrite, plainError, h.gated(h.api(plainError, h.scoreEvent))))
	}
}

func (h *Handler) getEvent(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	e, err := h.opts.Events.Get(r.Context(), org, r.PathValue("id"))
	if errors.Is(err, events.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, err.Error())
	}
	return e, err
}

// impactRequest is the body of POST .../impact.
type impactRequest struct {
	EventID string `json:"event_id"`
}

func (h *Handler) scoreEvent(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var req impactRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, errorf(http.StatusBadRequest, "the body is not an impact request: "+strings.TrimPrefix(err.Error(), "json: ")+`; accepted: {"event_id": "<id of a change event>"}`)
	}
	if req.EventID == "" {
		return nil, errorf(http.StatusBadRequest, `field "event_id" is missing or empty; accepted: {"event_id": "<id of a change event>"}`)
	}
	imp, err := h.opts.Impact.ScoreEvent(r.Context(), org, req.EventID)
	var eqc promql.ErrQueryCanceled
	var eqt promql.ErrQueryTimeout
	var es promql.ErrStorage
	switch {
	case errors.Is(err, impact.ErrNotFound):
		return nil, errorf(http.StatusNotFound, err.Error())
	case errors.Is(err, impact.ErrNotScored):
		return nil, errorf(http.StatusUnprocessableEntity, err.Error())
	case errors.As(err, &eqc), errors.As(err, &eqt), errors.As(err, &es), errors.Is(err, context.DeadlineExceeded):
		return nil, errorf(http.StatusServiceUnavailable, "the signals could not be queried; retry later: "+err.Error())
	case err != nil:
		return nil, err
	}
	return map[string]any{"event_id": req.EventID, "impact": imp}, nil
}
