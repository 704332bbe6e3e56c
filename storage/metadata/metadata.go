// Package metadata keeps the metric metadata (type, help, unit) that writers
// send with their samples — remote write 1.0 metadata, remote write 2.0
// per-series metadata and OTLP — per organization, for /api/v1/metadata.
//
// As Prometheus keeps its scrape targets' metadata, it is kept in memory
// only: senders send it again (Prometheus's remote write every minute, remote
// write 2.0 and OTLP with every series), so a restart empties it until the
// next write. An organization keeps at most MaxPerOrg metric families; the
// newest metadata of a family replaces the one before.
package metadata

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/scrape"
)

// DefaultMaxPerOrg is the number of metric families an organization keeps
// metadata for unless told otherwise.
const DefaultMaxPerOrg = 10000

// Store holds the metadata of every organization. It is safe for
// concurrent use.
type Store struct {
	max int

	mtx  sync.RWMutex
	orgs map[string]*orgStore
}

// New returns a store that keeps at most maxPerOrg metric families per
// organization (DefaultMaxPerOrg when 0 or less).
func New(maxPerOrg int) *Store {
	if maxPerOrg <= 0 {
		maxPerOrg = DefaultMaxPerOrg
	}
	return &Store{max: maxPerOrg, orgs: map[string]*orgStore{}}
}

type orgStore struct {
	mtx  sync.RWMutex
	fams map[string]scrape.MetricMetadata
}

// Set records metadata of the organization org. Families past the limit
// are left out; known families are updated.
func (s *Store) Set(org string, ms []scrape.MetricMetadata) {
	if len(ms) == 0 {
		return
	}
	o := s.org(org, true)
	o.mtx.Lock()
	defer o.mtx.Unlock()
	for _, m := range ms {
		if m.MetricFamily == "" {
			continue
		}
		old, ok := o.fams[m.MetricFamily]
		if ok && old == m {
			continue
		}
		if !ok && len(o.fams) >= s.max {
			continue
		}
		o.fams[m.MetricFamily] = m
	}
}

func (s *Store) org(org string, create bool) *orgStore {
	s.mtx.RLock()
	o := s.orgs[org]
	s.mtx.RUnlock()
	if o != nil || !create {
		return o
	}
	s.mtx.Lock()
	defer s.mtx.Unlock()
	if o = s.orgs[org]; o == nil {
		o = &orgStore{fams: map[string]scrape.MetricMetadata{}}
		s.orgs[org] = o
	}
	return o
}

// Org is the metadata of one organization, in the shape Prometheus's API
// reads from a scrape target.
func (s *Store) Org(org string) scrape.MetricMetadataStore {
	return orgView{s: s, org: org}
}

type orgView struct {
	s   *Store
	org string
}

// ListMetadata returns the organization's metadata sorted by family.
func (v orgView) ListMetadata() []scrape.MetricMetadata {
	o := v.s.org(v.org, false)
	if o == nil {
		return nil
	}
	o.mtx.RLock()
	out := make([]scrape.MetricMetadata, 0, len(o.fams))
	for _, m := range o.fams {
		out = append(out, m)
	}
	o.mtx.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].MetricFamily < out[j].MetricFamily })
	return out
}

func (v orgView) GetMetadata(family string) (scrape.MetricMetadata, bool) {
	o := v.s.org(v.org, false)
	if o == nil {
		return scrape.MetricMetadata{}, false
	}
	o.mtx.RLock()
	defer o.mtx.RUnlock()
	m, ok := o.fams[family]
	return m, ok
}

func (v orgView) SizeMetadata() int {
	n := 0
	for _, m := range v.ListMetadata() {
		n += len(m.MetricFamily) + len(m.Help) + len(m.Unit) + len(m.Type)
	}
	return n
}

func (v orgView) LengthMetadata() int {
	o := v.s.org(v.org, false)
	if o == nil {
		return 0
	}
	o.mtx.RLock()
	defer o.mtx.RUnlock()
	return len(o.fams)
}

// familySuffixes are the suffixes of the series of a histogram or summary
// family, which Prometheus's metadata lists under the family's name.
var familySuffixes = map[model.MetricType][]string{
	model.MetricTypeHistogram:      {"_bucket", "_count", "_sum", "_created"},
	model.MetricTypeGaugeHistogram: {"_bucket", "_gcount", "_gsum"},
	model.MetricTypeSummary:        {"_count", "_sum", "_created"},
}

// Family is the metric family of a series named name with metadata of type
// typ: the name without the suffix of a histogram's or summary's series.
func Family(name string, typ model.MetricType) string {
	for _, suf := range familySuffixes[typ] {
		if f, ok := strings.CutSuffix(name, suf); ok && f != "" {
			return f
		}
	}
	return name
}
