package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"
)

// EmbeddedOptions configures the embedded backend.
type EmbeddedOptions struct {
	// Dir holds one TSDB per organization, in Dir/<slug>.
	Dir string
	// Retention is how long samples are kept.
	Retention time.Duration
	// OutOfOrderWindow is how far behind the newest sample of a series a
	// sample may still be appended (change events need backfill).
	OutOfOrderWindow time.Duration
	// MaxExemplars is how many exemplars each organization keeps (a ring
	// buffer in memory, written to the WAL); 0: none are kept.
	MaxExemplars int64
	// WALCompression compresses the records of each organization's
	// write-ahead log: compression.Snappy (what Prometheus does by default),
	// compression.Zstd, or compression.None (also when empty).
	WALCompression compression.Type
}

// Embedded is a Backend with one Prometheus TSDB per organization.
type Embedded struct {
	logger *slog.Logger
	reg    prometheus.Registerer
	opts   EmbeddedOptions

	mtx    sync.Mutex
	dbs    map[string]*tsdb.DB
	closed bool
	// stop ends the guards of first truncations (see guardTruncation).
	stop chan struct{}
	wg   sync.WaitGroup
}

// NewEmbedded returns an embedded backend. Nothing is opened until an
// organization is first used.
func NewEmbedded(logger *slog.Logger, reg prometheus.Registerer, opts EmbeddedOptions) *Embedded {
	e := &Embedded{logger: logger, reg: reg, opts: opts, dbs: map[string]*tsdb.DB{}, stop: make(chan struct{})}
	if reg != nil {
		reg.MustRegister(&headSeriesCollector{e: e})
	}
	return e
}

// Org implements Backend.
func (e *Embedded) Org(slug string) (Org, error) {
	db, err := e.db(slug)
	if err != nil {
		return nil, err
	}
	return embeddedOrg{db}, nil
}

// embeddedOrg is an organization's TSDB.
type embeddedOrg struct{ *tsdb.DB }

// ActiveSeries implements Org: the series of the TSDB's head block.
func (o embeddedOrg) ActiveSeries() (uint64, bool) { return o.Head().NumSeries(), true }

func (e *Embedded) db(slug string) (*tsdb.DB, error) {
	e.mtx.Lock()
	defer e.mtx.Unlock()
	if e.closed {
		return nil, errors.New("storage is closed")
	}
	if db, ok := e.dbs[slug]; ok {
		return db, nil
	}
	if err := ValidSlug(slug); err != nil {
		return nil, err
	}
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = e.opts.Retention.Milliseconds()
	opts.OutOfOrderTimeWindow = e.opts.OutOfOrderWindow.Milliseconds()
	opts.EnableExemplarStorage = e.opts.MaxExemplars > 0
	opts.MaxExemplars = e.opts.MaxExemplars
	opts.WALCompression = e.opts.WALCompression
	// As Prometheus does: blocks grow to a tenth of the retention, at most 31 days.
	maxBlock := e.opts.Retention / 10
	if maxBlock > 31*24*time.Hour {
		maxBlock = 31 * 24 * time.Hour
	}
	if maxBlock.Milliseconds() > opts.MinBlockDuration {
		opts.MaxBlockDuration = maxBlock.Milliseconds()
	} else {
		opts.MaxBlockDuration = opts.MinBlockDuration
	}
	var reg prometheus.Registerer
	if e.reg != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"org": slug}, e.reg)
	}
	dir := filepath.Join(e.opts.Dir, slug)
	start := time.Now()
	logger := e.logger.With("org", slug)
	opened := lastChunkFile(dir)
	db, err := tsdb.Open(dir, logger, reg, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("open org %q tsdb: %w", slug, err)
	}
	e.logger.Info("opened organization storage", "org", slug, "dir", dir, "duration", time.Since(start))
	e.dbs[slug] = db
	if opts.OutOfOrderTimeWindow > 0 {
		db.DisableCompactions()
		e.wg.Go(func() { e.guardTruncation(db, dir, opened, logger) })
	}
	return db, nil
}

// guardTruncation keeps an organization's compactions off until its TSDB
// has cut a head chunk file of its own, or for firstCutWait at most.
//
// Prometheus's head chunk mapper (v0.316.0) resets its file sequence when
// a truncation finds that it deleted every file it listed — always true
// before the first file is cut. A chunk write that cuts the first file
// while that truncation runs is then followed by refs into a file that
// does not exist, and by a panic at the next cut ("expected newly cut file
// to have sequence:offset 1:8, got 2:8"). Out-of-order appends write
// chunks in the appending request's commit, so this is what a backfill
// into a new organization meets when its first head compaction runs. Once
// the process has cut a file, a truncation never deletes the current one,
// and the reset cannot happen.
func (e *Embedded) guardTruncation(db *tsdb.DB, dir string, opened int, logger *slog.Logger) {
	defer db.EnableCompactions()
	deadline := time.NewTimer(firstCutWait)
	defer deadline.Stop()
	tick := time.NewTicker(firstCutPoll)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-deadline.C:
			logger.Debug("no head chunk file cut yet; compactions enabled", "after", firstCutWait)
			return
		case <-tick.C:
			if lastChunkFile(dir) > opened {
				return
			}
		}
	}
}

// How long a new TSDB's compactions wait for its first head chunk file, and
// how often it is looked for. Data that fills no chunk in minutes needs no
// compaction that soon. Variables for tests.
var (
	firstCutWait = 2 * time.Minute
	firstCutPoll = 100 * time.Millisecond
)

// lastChunkFile is the sequence number of the newest head chunk file of the
// TSDB in dir, 0 when it has none.
func lastChunkFile(dir string) int {
	ents, err := os.ReadDir(filepath.Join(dir, "chunks_head"))
	if err != nil {
		return 0
	}
	last := 0
	for _, ent := range ents {
		if n, err := strconv.Atoi(ent.Name()); err == nil && n > last {
			last = n
		}
	}
	return last
}

// Open implements Backend: it opens the TSDB of every organization that
// has one on disk, replaying its WAL, so that a server is ready only once
// its data can be queried.
func (e *Embedded) Open(context.Context) error {
	entries, err := os.ReadDir(e.opts.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list organization storage: %w", err)
	}
	for _, ent := range entries {
		if !ent.IsDir() || ValidSlug(ent.Name()) != nil {
			continue
		}
		if _, err := e.db(ent.Name()); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Backend.
func (e *Embedded) Close() error {
	e.mtx.Lock()
	defer e.mtx.Unlock()
	if !e.closed {
		close(e.stop)
	}
	e.closed = true
	e.wg.Wait()
	var errs []error
	for slug, db := range e.dbs {
		if err := db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close org %q tsdb: %w", slug, err))
		}
		delete(e.dbs, slug)
	}
	return errors.Join(errs...)
}

// headSeriesCollector exports the number of in-memory (active) series of
// every open organization.
type headSeriesCollector struct{ e *Embedded }

var headSeriesDesc = prometheus.NewDesc(
	"tidemark_active_series",
	"Series in the head block (active series) of an organization's storage.",
	[]string{"org"}, nil,
)

func (c *headSeriesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- headSeriesDesc }

func (c *headSeriesCollector) Collect(ch chan<- prometheus.Metric) {
	c.e.mtx.Lock()
	slugs := make([]string, 0, len(c.e.dbs))
	counts := make(map[string]uint64, len(c.e.dbs))
	for slug, db := range c.e.dbs {
		slugs = append(slugs, slug)
		counts[slug] = db.Head().NumSeries()
	}
	c.e.mtx.Unlock()
	sort.Strings(slugs)
	for _, slug := range slugs {
		ch <- prometheus.MustNewConstMetric(headSeriesDesc, prometheus.GaugeValue, float64(counts[slug]), slug)
	}
}
