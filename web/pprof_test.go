package web_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/state"
)

// TestPprof: with --debug.pprof, Go's profiles are served to admin tokens
// only; without it, not at all.
func TestPprof(t *testing.T) {
	st := newTestStack(t, func(o *server.Options) { o.Pprof = true })
	code, body := do(t, "GET", st.url+"/debug/pprof/goroutine?debug=1", st.tokens["acme"][state.ScopeAdmin], nil, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), "goroutine profile:")
	code, body = do(t, "GET", st.url+"/debug/pprof/goroutine?debug=1", st.tokens["acme"][state.ScopeRead], nil, "")
	require.Equal(t, http.StatusForbidden, code, "%s", body)
	code, _ = do(t, "GET", st.url+"/debug/pprof/goroutine?debug=1", "", nil, "")
	require.Equal(t, http.StatusUnauthorized, code)

	off := newTestStack(t)
	code, _ = do(t, "GET", off.url+"/debug/pprof/goroutine?debug=1", off.tokens["acme"][state.ScopeAdmin], nil, "")
	require.Equal(t, http.StatusNotFound, code)
}
