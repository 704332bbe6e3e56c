package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/tidemark/tidemark/state"
)

// The admin API of an organization's tokens (admin scope):
//
//	GET    /api/v4/organizations/{org}/tokens          {"tokens": [{"name", "scope", "source", "created_at"}]}
//	POST   /api/v4/organizations/{org}/tokens          {"name", "scope"} -> 201 {"name", "scope", "token"}
//	DELETE /api/v4/organizations/{org}/tokens/{name}   204
//
// A token's value is shown once, in the answer to its creation: only its
// hash is stored. Names are unique per organization (409 on a duplicate).
func (h *Handler) registerTokens() {
	const path = "/api/v4/organizations/{org}/tokens"
	admin := func(f apiFunc) http.Handler {
		return h.auth.require(state.ScopeAdmin, plainError, h.gated(h.api(plainError, f)))
	}
	h.handle("GET "+path, admin(h.listTokens))
	h.handle("POST "+path, admin(h.createToken))
	h.handle("DELETE "+path+"/{name}", admin(h.revokeToken))
}

// tokenJSON is a token as the admin API lists it: never its value.
type tokenJSON struct {
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

func (h *Handler) listTokens(r *http.Request) (any, error) {
	rows, err := h.opts.State.ListTokens(r.Context(), r.PathValue("org"))
	if err != nil {
		return nil, err
	}
	out := make([]tokenJSON, 0, len(rows))
	for _, t := range rows {
		out = append(out, tokenJSON{Name: t.Name, Scope: string(t.Scope), Source: t.Source, CreatedAt: t.CreatedAt})
	}
	return map[string]any{"tokens": out}, nil
}

func (h *Handler) createToken(r *http.Request) (any, error) {
	var req struct {
		Name  string `json:"name"`
		Scope string `json:"scope"`
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errorf(http.StatusBadRequest, `the body must be {"name": "<name>", "scope": "read|write|admin"}: `+err.Error())
	}
	scope, err := state.ParseScope(req.Scope)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "field \"scope\": "+err.Error())
	}
	if err := state.ValidTokenName(req.Name); err != nil {
		return nil, errorf(http.StatusBadRequest, "field \"name\": "+err.Error())
	}
	token := state.NewToken()
	err = h.opts.State.AddToken(r.Context(), r.PathValue("org"), scope, req.Name, state.SourceAPI, token)
	if errors.Is(err, state.ErrExists) {
		return nil, errorf(http.StatusConflict, err.Error())
	}
	if err != nil {
		return nil, err
	}
	return withStatus{code: http.StatusCreated, body: map[string]string{"name": req.Name, "scope": string(scope), "token": token}}, nil
}

func (h *Handler) revokeToken(r *http.Request) (any, error) {
	org, name := r.PathValue("org"), r.PathValue("name")
	err := h.opts.State.RevokeToken(r.Context(), org, name)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil, errorf(http.StatusNotFound, err.Error())
	case errors.Is(err, state.ErrConfigToken):
		return nil, errorf(http.StatusConflict, err.Error())
	case err != nil:
		return nil, err
	}
	// This process refuses it at once; others within tokenCacheTTL.
	h.auth.forget(org, name)
	return withStatus{code: http.StatusNoContent}, nil
}
