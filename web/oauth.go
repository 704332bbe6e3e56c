package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/tidemark/tidemark/state"
)

// accessTokenResponse is Last9's answer to a refresh-token exchange.
type accessTokenResponse struct {
	AccessToken string   `json:"access_token"`
	ExpiresAt   int64    `json:"expires_at"`
	IssuedAt    int64    `json:"issued_at"`
	Type        string   `json:"type"`
	Scopes      []string `json:"scopes"`
}

// accessTokenLifetime is what the answer announces; Tidemark tokens do not
// expire, so clients that refresh on expiry keep working either way.
const accessTokenLifetime = 24 * 60 * 60

// accessToken answers POST /api/v4/oauth/access_token, so that clients
// written for Last9 can exchange their refresh token. The access token is
// the token itself.
func (h *Handler) accessToken(r *http.Request) (any, error) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &req); err != nil || req.RefreshToken == "" {
		return nil, errorf(http.StatusBadRequest, `the body must be {"refresh_token": "<token>"}`)
	}
	ti, _, err := h.auth.lookup(r.Context(), req.RefreshToken)
	if errors.Is(err, state.ErrNotFound) {
		return nil, errorf(http.StatusUnauthorized, "field \"refresh_token\": the token is not valid (unknown or removed)")
	}
	if err != nil {
		return nil, err
	}
	scopes := []string{string(ti.Scope)}
	if ti.Scope == state.ScopeAdmin {
		scopes = []string{"read", "write", "admin"}
	}
	now := h.now().Unix()
	return accessTokenResponse{
		AccessToken: req.RefreshToken,
		ExpiresAt:   now + accessTokenLifetime,
		IssuedAt:    now,
		Type:        "Bearer",
		Scopes:      scopes,
	}, nil
}
