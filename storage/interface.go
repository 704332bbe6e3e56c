// Package storage keeps the series of every organization.
//
// A Backend hands out one Org per organization. The embedded backend opens a
// Prometheus TSDB per organization; a remote backend (a Prometheus-compatible
// remote-write and query engine) can be added beside it without changes to
// the HTTP layer, which only sees the Routed adapters in context.go.
package storage

import (
	"context"
	"errors"
	"fmt"

	promstorage "github.com/prometheus/prometheus/storage"
)

// ErrNoOrg is returned when a request context carries no organization.
var ErrNoOrg = errors.New("no organization in request context")

// Backend holds the storage of every organization.
//
// Its methods are safe for concurrent use. Open is called once, before the
// server is ready; Close once, after every user of the Orgs it handed out
// has stopped.
type Backend interface {
	// Open prepares the backend so that a ready server answers queries at
	// once: the embedded backend opens every organization that has data on
	// disk (replaying its write-ahead log). Organizations it did not open
	// open on first use.
	Open(ctx context.Context) error
	// Org returns the storage of the organization with the given slug,
	// opening it on first use. The caller must have checked that the
	// organization exists; the slug must be valid (see ValidSlug).
	Org(slug string) (Org, error)
	// Close flushes and closes every open organization.
	Close() error
}

// Org is the storage of one organization. It is safe for concurrent use and
// owned by its Backend: callers never close it.
//
// Appenders are used by one goroutine each. When an appender's Commit
// returns nil, its samples are in the organization's write-ahead log: they
// survive a crash of the process (as Prometheus's, the log is fsynced per
// segment, not per commit) and are visible to queries. When Commit fails,
// none of them is stored.
type Org interface {
	promstorage.SampleAndChunkQueryable
	promstorage.AppendableV2
	// ActiveSeries is the number of the organization's series in memory,
	// and whether the storage counts them. When it does, its appenders
	// implement promstorage.GetRef, so that the series limit can tell a
	// new series from a known one; wrappers must keep both.
	ActiveSeries() (n uint64, counted bool)
}

// Wrapper is implemented by an Org that wraps another (a limit, an append
// watcher): the optional capabilities of the storage below (StatsReporter,
// promstorage.ExemplarQueryable) are looked up through it with As, so that
// a wrapper cannot hide them by not knowing of them.
type Wrapper interface {
	Unwrap() Org
}

// As finds, in o or the Orgs it wraps, the first that is a T.
func As[T any](o Org) (T, bool) {
	for o != nil {
		if t, ok := o.(T); ok {
			return t, true
		}
		w, ok := o.(Wrapper)
		if !ok {
			break
		}
		o = w.Unwrap()
	}
	var zero T
	return zero, false
}

// Preparer is implemented by appenders whose storage can take the samples
// before anything that depends on them is made durable elsewhere: Prepare
// sends them (a remote engine answers whether it took them) and reports
// whether they are stored now — then Commit only confirms; false means they
// are stored at Commit, as in a TSDB. A writer that records what the
// samples stand for (the event log) calls Prepare first, when the appender
// has it, so that an engine that refuses them refuses the whole write.
// Samples prepared and then rolled back may stay stored: writing them again
// is harmless.
type Preparer interface {
	Prepare() (stored bool, err error)
}

// RejectedError is a write the storage refused for good (a remote engine's
// 4xx): sending it again cannot succeed.
type RejectedError struct {
	// Status is the engine's HTTP status.
	Status int
	// Message is the engine's answer.
	Message string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("the metrics engine refused the samples (HTTP %d): %s", e.Status, e.Message)
}
