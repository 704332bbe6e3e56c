// Package ui serves Tidemark's web UI: plain HTML, CSS and JavaScript
// modules embedded in the binary. There is no build step; the files under
// static/ are what the browser runs, and none of them loads anything from
// another host (the Content-Security-Policy sent with them forbids it).
//
// Paths: GET "/" answers static/index.html, GET "/ui/NAME" answers
// static/NAME. The page routes between its views with the URL fragment
// (#/explore, #/events, #/rollouts, #/alerts), so the server needs no
// other route.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// AssetPrefix is the URL path under which the assets are served.
const AssetPrefix = "/ui/"

// ContentSecurityPolicy is sent with every asset: scripts, styles, images
// and API calls come from this server only.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentTypes are the types of the extensions the assets use; Files
// lists an asset of any other extension as application/octet-stream.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// ContentType is the Content-Type an asset named name is served with.
func ContentType(name string) string {
	if ct, ok := contentTypes[path.Ext(name)]; ok {
		return ct
	}
	return "application/octet-stream"
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Files returns the embedded assets, by name relative to static/
// ("index.html", "js/app.js"). The returned map and slices are the
// caller's.
func Files() map[string][]byte {
	out := map[string][]byte{}
	fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(p, "static/")] = b
		return nil
	})
	return out
}

// Handler returns the UI's handler. It answers GET and HEAD of "/" with
// the page and of AssetPrefix+NAME with an asset; every other request,
// and an asset that does not exist, goes to fallback.
func Handler(fallback http.Handler) http.Handler {
	assets := map[string]asset{}
	for name, b := range Files() {
		sum := sha256.Sum256(b)
		assets[name] = asset{body: b, contentType: ContentType(name), etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			fallback.ServeHTTP(w, r)
			return
		}
		name := ""
		switch {
		case r.URL.Path == "/":
			name = "index.html"
		case strings.HasPrefix(r.URL.Path, AssetPrefix):
			name = strings.TrimPrefix(r.URL.Path, AssetPrefix)
		}
		a, ok := assets[name]
		if name == "" || !ok {
			fallback.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Revalidate every time: the ETag makes that a 304 until the
		// binary changes.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
