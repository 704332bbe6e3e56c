package ui

import (
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func notFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"no route"}`))
	})
}

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// wantCSP is the policy written out, not taken from the code: a change to
// what the browser allows must change this test too.
const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func TestServesAssetsWithTheirTypes(t *testing.T) {
	h := Handler(notFound())
	for _, tc := range []struct {
		target, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="ui/js/app.js">`},
		{"/ui/index.html", "text/html; charset=utf-8", "<title>Tidemark</title>"},
		{"/ui/app.css", "text/css; charset=utf-8", "--accent"},
		{"/ui/js/app.js", "text/javascript; charset=utf-8", "import"},
		{"/ui/js/plot.js", "text/javascript; charset=utf-8", "data-series-count"},
		{"/ui/favicon.svg", "image/svg+xml", "<svg"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			rec := get(t, h, "GET", tc.target, nil)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, tc.contentType, rec.Header().Get("Content-Type"))
			require.Equal(t, wantCSP, rec.Header().Get("Content-Security-Policy"))
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			require.Contains(t, rec.Body.String(), tc.contains)

			// Revalidation answers 304 while the binary is the same.
			etag := rec.Header().Get("ETag")
			require.NotEmpty(t, etag)
			rec = get(t, h, "GET", tc.target, http.Header{"If-None-Match": {etag}})
			require.Equal(t, http.StatusNotModified, rec.Code)

			rec = get(t, h, "HEAD", tc.target, nil)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, tc.contentType, rec.Header().Get("Content-Type"))
		})
	}
}

func TestEveryAssetHasAKnownType(t *testing.T) {
	files := Files()
	require.Contains(t, files, "index.html")
	for name := range files {
		require.NotEqual(t, "application/octet-stream", ContentType(name), "asset %s: add its extension to contentTypes", name)
		rec := get(t, Handler(notFound()), "GET", AssetPrefix+name, nil)
		require.Equal(t, http.StatusOK, rec.Code, name)
		require.Equal(t, ContentType(name), rec.Header().Get("Content-Type"), name)
	}
}

func TestOtherRequestsGoToTheFallback(t *testing.T) {
	h := Handler(notFound())
	for _, tc := range []struct{ method, target string }{
		{"GET", "/api/v2/nothing"},
		{"GET", "/ui/"},
		{"GET", "/ui/missing.js"},
		{"GET", "/ui/../go.mod"},
		{"GET", "/static/index.html"},
		{"GET", "/index.html"},
		{"POST", "/"},
		{"DELETE", "/ui/app.css"},
	} {
		rec := get(t, h, tc.method, tc.target, nil)
		require.Equal(t, http.StatusNotFound, rec.Code, "%s %s", tc.method, tc.target)
		require.JSONEq(t, `{"error":"no route"}`, rec.Body.String(), "%s %s", tc.method, tc.target)
	}
}

// namespaceURIs name XML namespaces: identifiers that no browser fetches.
var namespaceURIs = map[string]bool{"http://www.w3.org/2000/svg": true}

// urlRE finds absolute and scheme-relative URLs.
var urlRE = regexp.MustCompile(`(?i)https?://[^\s"'<>)]+|//[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}[^\s"'<>)]*`)

// TestNoExternalURL keeps every request on this server: no asset names
// another host outside comments (a CDN, a web font, an analytics script).
func TestNoExternalURL(t *testing.T) {
	for name, b := range Files() {
		require.Empty(t, externalURLs(name, string(b)), name)
	}
}

func TestExternalURLsFindsThem(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"a.js", "import x from 'https://cdn.example/x.js';", []string{"https://cdn.example/x.js"}},
		{"a.js", "fetch(\"http://10.0.0.1:9090/api\")", []string{"http://10.0.0.1:9090/api"}},
		{"a.js", "// see https://prometheus.io/docs\nconst x = 1; /* http://a.example */", nil},
		{"a.js", "const ns = 'http://www.w3.org/2000/svg';", nil},
		{"a.css", "@import url(//fonts.example.com/css);", []string{"//fonts.example.com/css"}},
		{"a.css", "/* https://a.example */ body { color: red }", nil},
		{"a.html", "<link href=\"https://cdn.example/a.css\"><!-- https://b.example -->", []string{"https://cdn.example/a.css"}},
	} {
		require.Equal(t, tc.want, externalURLs(tc.name, tc.text), "%s: %s", tc.name, tc.text)
	}
}

// externalURLs returns the URLs of other hosts in an asset, outside
// comments.
func externalURLs(name, text string) []string {
	var out []string
	inComment := commentMask(name, text)
	for _, loc := range urlRE.FindAllStringIndex(text, -1) {
		u := text[loc[0]:loc[1]]
		if namespaceURIs[u] || inComment(loc[0]) {
			continue
		}
		out = append(out, u)
	}
	return out
}

// commentMask returns whether an offset of an asset is inside a comment.
func commentMask(name, text string) func(int) bool {
	var spans [][2]int
	add := func(re *regexp.Regexp) {
		for _, l := range re.FindAllStringIndex(text, -1) {
			spans = append(spans, [2]int{l[0], l[1]})
		}
	}
	switch path.Ext(name) {
	case ".js":
		add(regexp.MustCompile(`(?s)/\*.*?\*/`))
		add(regexp.MustCompile(`(?m)^\s*//.*$`))
	case ".css":
		add(regexp.MustCompile(`(?s)/\*.*?\*/`))
	case ".html", ".svg":
		add(regexp.MustCompile(`(?s)<!--.*?-->`))
	}
	return func(off int) bool {
		for _, s := range spans {
			if off >= s[0] && off < s[1] {
				return true
			}
		}
		return false
	}
}

// TestReferencesResolve checks that the page's and the modules' references
// name embedded assets, so a renamed file cannot break the page silently.
func TestReferencesResolve(t *testing.T) {
	files := Files()
	html := string(files["index.html"])
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(html, -1) {
		ref := m[1]
		require.True(t, strings.HasPrefix(ref, "ui/"), "index.html: %q is not a relative ui/ path", ref)
		require.Contains(t, files, strings.TrimPrefix(ref, "ui/"), "index.html references %q", ref)
	}
	importRE := regexp.MustCompile(`(?m)^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)`)
	for name, b := range files {
		if path.Ext(name) != ".js" {
			continue
		}
		for _, m := range importRE.FindAllStringSubmatch(string(b), -1) {
			ref := m[1] + m[2]
			require.True(t, strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../"), "%s imports %q: only relative modules", name, ref)
			target := path.Join(path.Dir(name), ref)
			require.Contains(t, files, target, "%s imports %q", name, ref)
		}
	}
}

func TestContentSecurityPolicyKeepsRequestsHere(t *testing.T) {
	for _, directive := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "style-src 'self'"} {
		require.Contains(t, ContentSecurityPolicy, directive)
	}
	require.NotContains(t, ContentSecurityPolicy, "unsafe-inline")
	require.NotContains(t, ContentSecurityPolicy, "unsafe-eval")
}
