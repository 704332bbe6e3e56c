package remote

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"
)

// credentialHeaders are the headers Tidemark reads tokens from; they never
// go to the engine.
var credentialHeaders = []string{"Authorization", "X-Last9-Api-Token", "Bearer", "Cookie"}

// ReadHandler answers a read of the Prometheus API (a request whose path is
// /api/v1/..., for the organization in its context) with the engine's
// answer to the same request under its query URL, with the organization's
// tenant.
func (b *Backend) ReadHandler() http.Handler {
	return b.proxy("proxy-read", func(r *http.Request) string {
		return b.queryURL.Path + r.URL.Path
	}, true, promUnavailable)
}

// WriteHandler passes a remote-write request (1.0 or 2.0) for the
// organization in its context to the engine as it came, with the
// organization's tenant, and answers with the engine's answer: the client's
// 2xx is the engine's. An engine that does not answer, or answers 5xx, is a
// 503 with Retry-After.
func (b *Backend) WriteHandler() http.Handler {
	return b.proxy("proxy-write", func(*http.Request) string {
		return b.writeURL.Path
	}, false, plainUnavailable)
}

// proxy forwards requests to the engine at the path path gives.
func (b *Backend) proxy(kind string, path func(*http.Request) string, keepQuery bool, unavailable func(w http.ResponseWriter, msg string, retryAfter time.Duration)) http.Handler {
	target := b.queryURL
	if kind == "proxy-write" {
		target = b.writeURL
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = target.Scheme, target.Host, target.Host
			pr.Out.URL.Path, pr.Out.URL.RawPath = path(pr.In), ""
			if !keepQuery {
				pr.Out.URL.RawQuery = ""
			}
			for _, h := range credentialHeaders {
				pr.Out.Header.Del(h)
			}
			tenant, _ := b.tenantOf(pr.In.Context())
			pr.Out.Header.Set(b.opts.TenantHeader, tenant)
		},
		Transport: b.http.Transport,
		ModifyResponse: func(resp *http.Response) error {
			start, _ := resp.Request.Context().Value(startKey{}).(time.Time)
			b.observe(kind, resp.StatusCode, start)
			if resp.StatusCode/100 == 5 && kind == "proxy-write" {
				// Clients retry a 503 with Retry-After; the engine's text
				// goes with it.
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				msg := fmt.Sprintf("the metrics engine answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
				resp.StatusCode, resp.Status = http.StatusServiceUnavailable, "503 Service Unavailable"
				resp.Header = http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Retry-After": {retryAfter(b.opts.RetryAfter)}}
				resp.Body = io.NopCloser(strings.NewReader(msg + "\n"))
				resp.ContentLength = int64(len(msg) + 1)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			start, _ := r.Context().Value(startKey{}).(time.Time)
			b.observe(kind, 0, start)
			b.logger.Warn("the metrics engine did not answer", "kind", kind, "err", err)
			unavailable(w, "the metrics engine did not answer; retry later", b.opts.RetryAfter)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := b.tenantOf(r.Context()); err != nil {
			unavailable(w, err.Error(), 0)
			return
		}
		if kind == "proxy-read" && strings.HasSuffix(r.URL.Path, "/api/v1/query") {
			if err := withQueryTime(r, time.Now()); err != nil {
				promBadData(w, err.Error())
				return
			}
		}
		rp.ServeHTTP(w, r.WithContext(withStart(r.Context(), time.Now())))
	})
}

// withQueryTime gives an instant query without a time (as Flagger sends
// them) the time it arrived, to the millisecond: an engine may evaluate it
// at the second instead (Cortex does), before samples written within that
// second.
func withQueryTime(r *http.Request, now time.Time) error {
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("cannot parse the form: %w", err)
	}
	if r.Method == http.MethodPost {
		// ParseForm read the body: send what it read.
		body := r.PostForm.Encode()
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	if r.Form.Get("time") == "" {
		q := r.URL.Query()
		q.Set("time", strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', 3, 64))
		r.URL.RawQuery = q.Encode()
	}
	return nil
}

// promBadData is Prometheus's error envelope with status 400.
func promBadData(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "bad_data", "error": msg})
}

func retryAfter(d time.Duration) string { return strconv.Itoa(int(d.Seconds() + 0.5)) }

// promUnavailable is Prometheus's error envelope with status 503.
func promUnavailable(w http.ResponseWriter, msg string, after time.Duration) {
	if after > 0 {
		w.Header().Set("Retry-After", retryAfter(after))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "unavailable", "error": msg})
}

// plainUnavailable is a remote-write handler's plain-text 503.
func plainUnavailable(w http.ResponseWriter, msg string, after time.Duration) {
	if after > 0 {
		w.Header().Set("Retry-After", retryAfter(after))
	}
	http.Error(w, msg, http.StatusServiceUnavailable)
}
