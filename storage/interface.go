// Package storage keeps the series of every organization.
//
// A Backend hands out one Org per organization. The embedded backend opens a
// Prometheus TSDB per organization; a remote backend (a Prometheus-compatible
// remote-write and query engine) can be added beside it without changes to
// the HTTP layer, which only sees the Routed adapters in context.go.
package storage

import (
	"errors"

	promstorage "github.com/prometheus/prometheus/storage"
)

// ErrNoOrg is returned when a request context carries no organization.
var ErrNoOrg = errors.New("no organization in request context")

// Backend holds the storage of every organization.
//
// Its methods are safe for concurrent use. Close must be called once, after
// every user of the Orgs it handed out has stopped.
type Backend interface {
	// Org returns the storage of the organization with the given slug,
	// opening it on first use. The caller must have checked that the
	// organization exists; the slug must be valid (see ValidSlug).
	Org(slug string) (Org, error)
	// Close flushes and closes every open organization.
	Close() error
}

// Org is the storage of one organization. It is safe for concurrent use and
// owned by its Backend: callers never close it.
type Org interface {
	promstorage.SampleAndChunkQueryable
	promstorage.AppendableV2
}
