package web_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/state"
)

// TestTokenAdminAPI: list, create (the value shown once; 409 on a taken
// name), and revoke (refused at once by the process that revoked it).
func TestTokenAdminAPI(t *testing.T) {
	st := newTestStack(t)
	admin := st.tokens["acme"][state.ScopeAdmin]
	base := st.url + "/api/v4/organizations/acme/tokens"

	code, body := do(t, "POST", base, admin, []byte(`{"name":"grafana","scope":"read"}`), "application/json")
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var created struct{ Name, Scope, Token string }
	require.NoError(t, json.Unmarshal(body, &created))
	require.Equal(t, "grafana", created.Name)
	require.Equal(t, "read", created.Scope)
	require.Regexp(t, `^tdm_`, created.Token)

	code, body = do(t, "GET", st.url+"/api/v1/query?query=vector(1)", created.Token, nil, "")
	require.Equal(t, 200, code, "%s", body)

	code, body = do(t, "POST", base, admin, []byte(`{"name":"grafana","scope":"write"}`), "application/json")
	require.Equal(t, http.StatusConflict, code, "%s", body)
	require.JSONEq(t, `{"error":"organization \"acme\" has a token named \"grafana\"; token names are unique per organization (revoke it first, or choose another name): already exists"}`, string(body))
	for _, bad := range []string{`{"name":"x","scope":"root"}`, `{"name":"","scope":"read"}`, `{"name":"a/b","scope":"read"}`, `nope`} {
		code, body = do(t, "POST", base, admin, []byte(bad), "application/json")
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", bad, body)
	}

	code, body = do(t, "GET", base, admin, nil, "")
	require.Equal(t, 200, code, "%s", body)
	require.NotContains(t, string(body), created.Token)
	require.NotContains(t, string(body), state.HashToken(created.Token))
	var list struct {
		Tokens []struct {
			Name, Scope, Source string
			CreatedAt           time.Time `json:"created_at"`
		}
	}
	require.NoError(t, json.Unmarshal(body, &list))
	names := map[string]string{}
	for _, tk := range list.Tokens {
		names[tk.Name] = tk.Source
		require.WithinDuration(t, time.Now(), tk.CreatedAt, time.Minute)
	}
	require.Equal(t, map[string]string{"acme-read": "config", "acme-write": "config", "acme-admin": "config", "grafana": "api"}, names)

	// Another organization's admin cannot revoke it.
	code, body = do(t, "DELETE", base+"/grafana", st.tokens["globex"][state.ScopeAdmin], nil, "")
	require.Equal(t, http.StatusForbidden, code, "%s", body)
	code, body = do(t, "DELETE", base+"/grafana", st.tokens["acme"][state.ScopeWrite], nil, "")
	require.Equal(t, http.StatusForbidden, code, "%s", body)
	code, body = do(t, "DELETE", base+"/acme-read", admin, nil, "")
	require.Equal(t, http.StatusConflict, code, "%s", body)
	require.Contains(t, string(body), "declared in the config file")

	code, body = do(t, "DELETE", base+"/grafana", admin, nil, "")
	require.Equal(t, http.StatusNoContent, code, "%s", body)
	require.Empty(t, body)
	code, body = do(t, "GET", st.url+"/api/v1/query?query=vector(1)", created.Token, nil, "")
	require.Equal(t, http.StatusUnauthorized, code, "%s", body)
	code, body = do(t, "DELETE", base+"/grafana", admin, nil, "")
	require.Equal(t, http.StatusNotFound, code, "%s", body)
}
