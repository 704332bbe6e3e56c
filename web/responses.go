package web

import (
	"bytes"
	"net/http"
	"slices"
	"strings"

	"github.com/grafana/regexp"
	"github.com/prometheus/prometheus/util/httputil"

	"github.com/tidemark/tidemark/query"
	tmstorage "github.com/tidemark/tidemark/storage"
)

// keptResponses serves a range query that was answered before, unchanged,
// with the encoded answer the results cache kept (query.ResultsCache's
// KeepResponse): the bytes Prometheus's API wrote for it, with the
// headers it sets, compressed as the client asks. Any other request goes
// to api, and its answer is kept if the cache holds it whole.
type keptResponses struct {
	cache *query.ResultsCache
	api   http.Handler
	cors  *regexp.Regexp
	// maxBody is the largest answer kept.
	maxBody int
}

// keptParams are the parameters of a range query whose answer can be
// kept; a request with any other (stats, lookback_delta, limit, ...) is
// always evaluated.
var keptParams = map[string]bool{"query": true, "start": true, "end": true, "step": true, "timeout": true}

func (k *keptResponses) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	org, ok := tmstorage.OrgFrom(r.Context())
	rk, keep := requestKey(r)
	if !ok || !keep {
		k.api.ServeHTTP(w, r)
		return
	}
	encoding := contentEncoding(r)
	if body, enc, ok := k.cache.Response(org, rk, encoding); ok {
		if encoding == "" || enc != nil {
			w.Header().Add("Vary", "Accept-Encoding")
			if enc != nil {
				w.Header().Set("Content-Encoding", encoding)
				body = enc
			}
			k.write(w, r, body)
			return
		}
		// Compressed once, and kept so.
		out := &recorder{ResponseWriter: w, max: k.maxBody}
		httputil.CompressionHandler{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k.write(w, r, body)
		})}.ServeHTTP(out, r)
		if encoding != "" && !out.over {
			k.cache.KeepEncoded(org, rk, encoding, body, bytes.Clone(out.buf.Bytes()))
		}
		return
	}
	ctx, answer := query.WithAnswer(r.Context())
	inner := r.WithContext(ctx)
	inner.Header = r.Header.Clone()
	inner.Header.Del("Accept-Encoding") // Compressed below, as the client asks.
	// The query is done before its answer is written: an answer that no
	// extent holds whole is not copied.
	var rec *recorder
	out := &recorder{ResponseWriter: w, max: k.maxBody, keep: answer.Whole}
	httputil.CompressionHandler{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rec = &recorder{ResponseWriter: w, max: k.maxBody, keep: answer.Whole}
		k.api.ServeHTTP(rec, inner)
	})}.ServeHTTP(out, r)
	if !answer.Whole() || rec == nil || rec.status != http.StatusOK || rec.over || rec.Header().Get("Content-Type") != "application/json" {
		return
	}
	body := bytes.Clone(rec.buf.Bytes())
	k.cache.KeepResponse(answer, rk, body)
	if encoding != "" && !out.over {
		k.cache.KeepEncoded(org, rk, encoding, body, bytes.Clone(out.buf.Bytes()))
	}
}

// write writes a kept answer as Prometheus's API does.
func (k *keptResponses) write(w http.ResponseWriter, r *http.Request, body []byte) {
	httputil.SetCORS(w, k.cors, r)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// contentEncoding is the encoding httputil.CompressionHandler answers r
// in: the first of gzip and deflate that Accept-Encoding names, or none.
func contentEncoding(r *http.Request) string {
	for _, e := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		switch e = strings.TrimSpace(e); e {
		case "gzip", "deflate":
			return e
		}
	}
	return ""
}

// requestKey tells apart the range queries that have different answers:
// the same query text, start, end and step as sent.
func requestKey(r *http.Request) (string, bool) {
	if err := r.ParseForm(); err != nil {
		return "", false
	}
	for p := range r.Form {
		if !keptParams[p] {
			return "", false
		}
	}
	for _, p := range []string{"query", "start", "end", "step"} {
		if len(r.Form[p]) != 1 {
			return "", false
		}
	}
	return strings.Join([]string{r.Form.Get("query"), r.Form.Get("start"), r.Form.Get("end"), r.Form.Get("step")}, "\xff"), true
}

// recorder passes a response on and keeps a copy of its body, up to max
// bytes, if keep (nil: always) says so when the body starts.
type recorder struct {
	http.ResponseWriter
	status  int
	buf     bytes.Buffer
	max     int
	keep    func() bool
	started bool
	over    bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	// Both compression handlers, the API's and the one around it, say
	// that the answer varies by Accept-Encoding: say it once.
	h := r.Header()
	h["Vary"] = slices.Compact(slices.Sorted(slices.Values(h["Vary"])))
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if !r.started {
		r.started = true
		r.over = r.keep != nil && !r.keep()
	}
	if !r.over {
		if r.buf.Len()+len(b) > r.max {
			r.over = true
			r.buf = bytes.Buffer{}
		} else {
			r.buf.Write(b)
		}
	}
	return r.ResponseWriter.Write(b)
}
