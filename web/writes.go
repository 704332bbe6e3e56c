package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidemark/tidemark/storage"
)

// storageStatus gives Prometheus's remote-write and OTLP handlers the
// status codes their clients act on. They answer 500 to storage errors they
// do not know; a limit is a 400 (not retried: resending cannot succeed),
// and a failed commit (disk full, read-only) is a 503 with Retry-After.
func storageStatus(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, rep := storage.WithWriteReport(r.Context())
		next.ServeHTTP(&reportWriter{ResponseWriter: w, rep: rep}, r.WithContext(ctx))
	})
}

// commitRetryAfter is the Retry-After of a 503 for a failed commit.
const commitRetryAfter = 10

type reportWriter struct {
	http.ResponseWriter
	rep      *storage.WriteReport
	replaced bool
}

func (w *reportWriter) WriteHeader(code int) {
	if code == http.StatusInternalServerError {
		limit, commit := w.rep.Errors()
		var rejected *storage.RejectedError
		switch {
		case limit != nil:
			w.replace(http.StatusBadRequest, limit.Error())
			return
		case commit != nil && errors.As(commit, &rejected):
			w.replace(rejected.Status, rejected.Error())
			return
		case commit != nil:
			w.Header().Set("Retry-After", strconv.Itoa(commitRetryAfter))
			w.replace(http.StatusServiceUnavailable, "storage cannot commit the write, retry later: "+commit.Error())
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *reportWriter) replace(code int, msg string) {
	w.replaced = true
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Del("Content-Length")
	w.ResponseWriter.WriteHeader(code)
	w.ResponseWriter.Write([]byte(msg + "\n"))
}

func (w *reportWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil // The handler's own message is replaced.
	}
	return w.ResponseWriter.Write(b)
}

func (w *reportWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// remoteWrite1 passes remote-write 1.0 requests to a remote engine as they
// came (proxy), and decodes 2.0 requests here (local) into the storage,
// which sends them on as 1.0: engines such as Cortex take only 1.0.
func remoteWrite1(proxy, local http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Content-Type"), "io.prometheus.write.v2.Request") {
			local.ServeHTTP(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	})
}
