package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseCredentials(t *testing.T) {
	basic := func(user, pass string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   string
		errHas string
	}{
		{"bearer", map[string]string{"Authorization": "Bearer tok-1"}, "tok-1", ""},
		{"bearer any case", map[string]string{"Authorization": "bearer tok-1"}, "tok-1", ""},
		{"levitate header", map[string]string{"X-LAST9-API-TOKEN": "Bearer tok-1"}, "tok-1", ""},
		{"levitate header as in the seed", map[string]string{"X-LAST9-API-TOKEN": "Bearer: tok-1"}, "tok-1", ""},
		{"levitate header bare token", map[string]string{"X-LAST9-API-TOKEN": "tok-1"}, "tok-1", ""},
		{"basic auth password", map[string]string{"Authorization": basic("prometheus", "tok-1")}, "tok-1", ""},
		{"basic auth empty user", map[string]string{"Authorization": basic("", "tok-1")}, "tok-1", ""},
		{"legacy header wins over authorization", map[string]string{"X-LAST9-API-TOKEN": "Bearer a", "Authorization": "Bearer b"}, "a", ""},
		{"none", nil, "", "no credentials"},
		{"basic auth without password", map[string]string{"Authorization": basic("prometheus", "")}, "", "empty password"},
		{"unknown scheme", map[string]string{"Authorization": "Token tok-1"}, "", "scheme is not accepted"},
		{"bearer without token", map[string]string{"Authorization": "Bearer "}, "", "scheme is not accepted"},
		{"bearer with spaces", map[string]string{"Authorization": "Bearer a b"}, "", "contains spaces"},
		{"levitate header junk", map[string]string{"X-LAST9-API-TOKEN": "Bearer a b"}, "", "X-LAST9-API-TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			got, err := ParseCredentials(h)
			if tc.errHas != "" {
				require.ErrorContains(t, err, tc.errHas)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// FuzzParseCredentials: no header panics; a token, when returned, is
// non-empty and has no whitespace.
func FuzzParseCredentials(f *testing.F) {
	f.Add("Authorization", "Bearer abc")
	f.Add("X-LAST9-API-TOKEN", "Bearer: abc")
	f.Add("Authorization", "Basic cHJvbWV0aGV1czp0b2s=")
	f.Add("Authorization", "Basic !!!")
	f.Fuzz(func(t *testing.T, name, value string) {
		h := http.Header{}
		h.Set(name, value)
		tok, err := ParseCredentials(h)
		if err == nil && (tok == "" || strings.ContainsAny(tok, " \t")) && !strings.HasPrefix(strings.ToLower(value), "basic") {
			t.Fatalf("accepted token %q from %s: %q", tok, name, value)
		}
		if err == nil && tok == "" {
			t.Fatalf("accepted an empty token from %s: %q", name, value)
		}
	})
}
