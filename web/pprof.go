package web

import (
	"net/http"
	"net/http/pprof"

	"github.com/tidemark/tidemark/state"
)

// registerPprof serves Go's runtime profiles (net/http/pprof) to admin
// tokens: `go tool pprof -http : 'http://host:9470/debug/pprof/profile?seconds=30'`
// with the token as a bearer header or basic-auth password.
func (h *Handler) registerPprof() {
	admin := func(f http.HandlerFunc) http.Handler {
		return h.auth.require(state.ScopeAdmin, plainError, f)
	}
	h.handle("GET /debug/pprof/", admin(pprof.Index))
	h.handle("GET /debug/pprof/cmdline", admin(pprof.Cmdline))
	h.handle("GET /debug/pprof/profile", admin(pprof.Profile))
	h.handle("GET /debug/pprof/symbol", admin(pprof.Symbol))
	h.handle("POST /debug/pprof/symbol", admin(pprof.Symbol))
	h.handle("GET /debug/pprof/trace", admin(pprof.Trace))
}
