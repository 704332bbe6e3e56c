// Package prometheus is the module Tidemark's end-to-end tests build
// Prometheus's commands from (internal/testservices.PrometheusBinary): go.mod
// requires them as tools, at the Prometheus version of the root module, so
// that their go.sum entries are here rather than in the root module.
package prometheus
