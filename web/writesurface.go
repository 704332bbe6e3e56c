package web

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"

	"github.com/tidemark/tidemark/storage"
	"github.com/tidemark/tidemark/storage/metadata"
)

// writeRoute is what /api/v1/write does before Prometheus's handler (or the
// remote engine) sees a request: the 415 of an unsupported content, and,
// when samples are stored here (local), the metadata of remote write 1.0.
func (s promSurface) writeRoute(local bool, next http.Handler) http.Handler {
	if local {
		next = s.recordWriteV1Metadata(next)
	}
	return remoteWriteContent(next)
}

// remoteWriteContent answers 415 Unsupported Media Type to a Content-Type or
// Content-Encoding remote write does not use, as the remote-write 2.0
// specification requires of receivers ("Receivers MUST return 415 HTTP
// Unsupported Media Type status code if they don't support a given content
// type or encoding provided by Senders"). Prometheus's handler decompresses
// the body first, so a body that is not snappy gets its 400 whatever its
// type, and a remote engine answers as it does. No Content-Type is taken as
// remote write 1.0, as Prometheus's handler takes it.
func remoteWriteContent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if _, err := remoteapi.ParseProtoMsg(ct); err != nil {
				http.Error(w, fmt.Sprintf("Content-Type %q is not accepted: remote write takes application/x-protobuf (1.0) or application/x-protobuf;proto=io.prometheus.write.v2.Request (2.0)", ct), http.StatusUnsupportedMediaType)
				return
			}
		}
		if enc := r.Header.Get("Content-Encoding"); enc != "" && enc != string(remoteapi.SnappyBlockCompression) {
			http.Error(w, fmt.Sprintf("Content-Encoding %q is not accepted: remote write takes snappy", enc), http.StatusUnsupportedMediaType)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recordWriteV1Metadata keeps the metadata of a remote-write 1.0 request
// that was written (2xx): Prometheus's handler does not pass it on. Remote
// write 2.0 and OTLP metadata comes through the appendable.
func (s promSurface) recordWriteV1Metadata(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, err := remoteapi.ParseProtoMsg(r.Header.Get("Content-Type")); r.Header.Get("Content-Type") != "" && (err != nil || mt != remoteapi.WriteV1MessageType) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			code, msg := errorStatus(err)
			if code == http.StatusInternalServerError {
				code, msg = http.StatusBadRequest, "cannot read the request body: "+err.Error()
			}
			http.Error(w, msg, code)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.code/100 != 2 {
			return
		}
		org, ok := storage.OrgFrom(r.Context())
		if !ok {
			return
		}
		// A request Prometheus's handler took is valid; its metadata is too.
		if ms, err := metadata.FromWriteV1(body); err == nil {
			s.metadata.Set(org, ms)
		}
	})
}
