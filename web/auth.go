package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// tokenCacheTTL bounds how long a removed token keeps working: a token
// revoked through this process's admin API is refused at once, one revoked
// elsewhere (the CLI, another replica) within this time.
const tokenCacheTTL = 10 * time.Second

// authState is what authentication reads: tokens, and organizations.
type authState interface {
	LookupTokenHash(ctx context.Context, hash string) (state.TokenInfo, error)
	OrgExists(ctx context.Context, slug string) (bool, error)
}

// authenticator checks tokens against the state database, with a short
// cache so that remote write does not hit the database on every request.
type authenticator struct {
	logger *slog.Logger
	db     authState
	now    func() time.Time

	mtx   sync.Mutex
	cache map[string]cachedToken // by token hash

	limiter *tokenLimiter
}

type cachedToken struct {
	info    state.TokenInfo
	expires time.Time
}

// authToken is an authenticated token.
type authToken struct {
	state.TokenInfo
	hash string
}

func newAuthenticator(logger *slog.Logger, db authState) *authenticator {
	return &authenticator{logger: logger, db: db, now: time.Now, cache: map[string]cachedToken{}}
}

// lookup returns what a token grants and its hash.
func (a *authenticator) lookup(ctx context.Context, token string) (state.TokenInfo, string, error) {
	h := state.HashToken(token)
	now := a.now()
	a.mtx.Lock()
	c, ok := a.cache[h]
	a.mtx.Unlock()
	if ok && now.Before(c.expires) {
		return c.info, h, nil
	}
	info, err := a.db.LookupTokenHash(ctx, h)
	if err != nil {
		return info, h, err
	}
	a.mtx.Lock()
	if len(a.cache) > 10000 {
		clear(a.cache)
	}
	a.cache[h] = cachedToken{info: info, expires: now.Add(tokenCacheTTL)}
	a.mtx.Unlock()
	return info, h, nil
}

// forget drops the cached lookups of an organization's token.
func (a *authenticator) forget(org, name string) {
	a.mtx.Lock()
	defer a.mtx.Unlock()
	for h, c := range a.cache {
		if c.info.Org == org && c.info.Name == name {
			delete(a.cache, h)
		}
	}
}

type tokenKey struct{}

// tokenFrom returns the authenticated token of a request.
func tokenFrom(ctx context.Context) state.TokenInfo {
	ti, _ := ctx.Value(tokenKey{}).(state.TokenInfo)
	return ti
}

// require authenticates a request, checks its scope and organization, and
// routes storage calls to that organization. The organization is the
// {org} path value when the route has one, else the token's.
func (a *authenticator) require(need state.Scope, style errorStyle, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, code, err := a.authorize(r, need)
		if err != nil {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tidemark"`)
			}
			style(w, code, err.Error())
			return
		}
		if ok, wait := a.limiter.allow(ti.hash, a.now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			style(w, http.StatusTooManyRequests, a.limiter.message(ti.Name, wait))
			return
		}
		ctx := context.WithValue(r.Context(), tokenKey{}, ti.TokenInfo)
		ctx = storage.WithOrg(ctx, ti.Org)
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (a *authenticator) authorize(r *http.Request, need state.Scope) (authToken, int, error) {
	token, err := ParseCredentials(r.Header)
	if err != nil {
		return authToken{}, http.StatusUnauthorized, err
	}
	info, hash, err := a.lookup(r.Context(), token)
	ti := authToken{TokenInfo: info, hash: hash}
	if errors.Is(err, state.ErrNotFound) {
		return ti, http.StatusUnauthorized, errors.New("the token is not valid (unknown or removed)")
	}
	if err != nil {
		a.logger.Error("look up token", "err", err)
		return ti, http.StatusServiceUnavailable, errors.New("tokens cannot be checked right now; retry later")
	}
	if org := r.PathValue("org"); org != "" && org != ti.Org {
		if storage.ValidSlug(org) != nil {
			return ti, http.StatusNotFound, fmt.Errorf("organization %q not found", org)
		}
		exists, err := a.db.OrgExists(r.Context(), org)
		if err != nil {
			return ti, http.StatusServiceUnavailable, errors.New("organizations cannot be checked right now; retry later")
		}
		if !exists {
			return ti, http.StatusNotFound, fmt.Errorf("organization %q not found", org)
		}
		return ti, http.StatusForbidden, fmt.Errorf("the token belongs to organization %q and cannot access organization %q", ti.Org, org)
	}
	if !ti.Scope.Allows(need) {
		return ti, http.StatusForbidden, fmt.Errorf("the token %q has scope %q; this route needs scope %q (or admin)", ti.Name, ti.Scope, need)
	}
	return ti, 0, nil
}
