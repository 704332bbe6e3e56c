package web

import (
	"errors"
	"net/http"
	"strings"
)

// LegacyTokenHeader is the header Levitate clients send their token in.
const LegacyTokenHeader = "X-LAST9-API-TOKEN"

// errNoCredentials: the request carries no token at all.
var errNoCredentials = errors.New("no credentials: send the token as 'Authorization: Bearer <token>', as 'X-LAST9-API-TOKEN: Bearer <token>', or as the password of HTTP basic auth")

// ParseCredentials returns the token a request carries, in any of the forms
// DESIGN.md accepts: "Authorization: Bearer T", "X-LAST9-API-TOKEN: Bearer T"
// (or "Bearer: T", or the bare token), or T as the basic-auth password.
func ParseCredentials(h http.Header) (string, error) {
	if v := h.Get(LegacyTokenHeader); v != "" {
		t := bearerValue(v)
		if t == "" {
			t = strings.TrimSpace(v)
		}
		if t == "" || strings.ContainsAny(t, " \t") {
			return "", errors.New("header X-LAST9-API-TOKEN: the value is not a token; accepted: 'Bearer <token>'")
		}
		return t, nil
	}
	v := h.Get("Authorization")
	if v == "" {
		return "", errNoCredentials
	}
	if t := bearerValue(v); t != "" {
		if strings.ContainsAny(t, " \t") {
			return "", errors.New("header Authorization: the bearer token contains spaces; accepted: 'Bearer <token>'")
		}
		return t, nil
	}
	r := http.Request{Header: http.Header{"Authorization": {v}}}
	if _, pass, ok := r.BasicAuth(); ok {
		if pass == "" {
			return "", errors.New("header Authorization: basic auth has an empty password; accepted: the token as the password (any user name)")
		}
		return pass, nil
	}
	return "", errors.New("header Authorization: the scheme is not accepted; accepted: 'Bearer <token>' or basic auth with the token as the password")
}

// bearerValue returns T from "Bearer T" or "Bearer: T" (any case), or "".
func bearerValue(v string) string {
	v = strings.TrimSpace(v)
	const scheme = "bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return ""
	}
	rest := v[len(scheme):]
	rest = strings.TrimPrefix(rest, ":")
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return ""
	}
	return strings.TrimSpace(rest)
}
